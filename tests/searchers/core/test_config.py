"""Typed searcher configs: `--set key=value` by type, one-line errors naming what is valid,
options described for `--help-options`."""

from __future__ import annotations

import pytest

from searchers.core.config import SearchConfig, apply_sets, describe
from searchers.registry import list_searchers, searcher_class


def test_sets_are_parsed_by_the_field_type() -> None:
    cls = searcher_class("fbnet").Config
    c = apply_sets(cls, ["epochs=7", "hard=true", "tau_end=0.5", "arch-lr=0.1"], {"seed": 3})
    assert (c.epochs, c.hard, c.tau_end, c.arch_lr, c.seed) == (7, True, 0.5, 0.1, 3)  # type: ignore[attr-defined]
    p = apply_sets(searcher_class("proxyless").Config, ["mode=two"])
    assert p.mode == "two"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["nonsense=1"], "--set nonsense: unknown option \\(options: epochs, warmup_epochs"),
        (["epochs=ten"], "--set epochs: expected an integer, got 'ten'"),
        (["lr=fast"], "--set lr: expected a number"),
        (["mode=three"], "--set mode: one of full_v2, two, got 'three'"),
        (["shared_init=maybe"], "--set shared_init: expected true or false"),
        (["epochs"], "--set: expected KEY=VALUE"),
        (["epochs=3", "warmup_epochs=3"], "epochs: need epochs >= 1 and 0 <= warmup_epochs"),
        (["lr=-1"], "lr: must be positive"),
    ],
)
def test_bad_sets_are_one_line_errors(sets: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_sets(searcher_class("proxyless").Config, sets)


@pytest.mark.parametrize("name", list_searchers())
def test_every_option_is_described_with_its_source(name: str) -> None:
    rows = describe(searcher_class(name).Config)
    names = [r["name"] for r in rows]
    assert {"epochs", "warmup_epochs", "lr", "arch_lr", "seed"} <= set(names)
    assert all(r["help"] and r["paper"] and r["type"] for r in rows)
    assert issubclass(searcher_class(name).Config, SearchConfig)
