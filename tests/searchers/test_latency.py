"""LatencyTable: layout and masks, the relaxed and exact latencies, the three file formats,
the service path, and the checks that refuse holes and predicted cells."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from latency_service.repository.latency import lut as service_lut
from latency_service.schemas import LutOut
from profiler.lut import new_lut, save_lut
from profiler.lutformats import Cell, create_format, entries_for
from searchers.latency import LatencyTable
from searchers.spaces import ArchError, SearchSpace, create_space


def _ms(key: str) -> float:
    """A deterministic latency per op key, in [0.01, 2.01) ms."""
    return 0.01 + 2 * int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8


def _keys(space: SearchSpace) -> list[str]:
    return [op.key for op in space.fixed_ops() + space.distinct_ops()]


@pytest.fixture(scope="module")
def fbnet() -> SearchSpace:
    return create_space("fbnet", resolution=32, width=0.5)


@pytest.fixture(scope="module")
def full(fbnet: SearchSpace) -> LatencyTable:
    return LatencyTable.from_cells(fbnet, {k: (_ms(k), "measured") for k in _keys(fbnet)})


def _found(
    space: SearchSpace, predicted: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """What the service knows per key (measured or predicted), as `repository.latency` has it."""
    out: dict[str, dict[str, Any]] = {}
    for key in _keys(space):
        if key in predicted:
            out[key] = {
                "source": "predicted",
                "median_ms": _ms(key),
                "error_ms": 0.1,
                "predictor": {"version": 3},
            }
        else:
            out[key] = {
                "source": "measured",
                "median_ms": _ms(key),
                "ci_half_width_ms": 0.001,
                "stable": True,
                "std_ms": 0.002,
                "samples": 40,
            }
    return out


def _service_table(space: SearchSpace, found: dict[str, dict[str, Any]]) -> LutOut:
    opts = tuple(sorted((k, v) for k, v in space.params().items() if k in ("C", "cells")))
    data = service_lut(
        found, "phone", 2, space.name, space.resolution, space.width, space.classes, opts
    )
    return LutOut.model_validate(data)


def test_layout_mask_and_fixed(fbnet: SearchSpace, full: LatencyTable) -> None:
    layers = fbnet.layers()
    assert full.table.shape == (22, 9) and full.table.dtype == torch.float64
    want_mask = [[c.op is not None for c in layer.choices] for layer in layers]
    assert full.mask.tolist() == want_mask
    assert full.mask.sum() == 22 * 9 - 6  # skip is masked where the shape changes
    for row, layer in enumerate(layers):
        for col, c in enumerate(layer.choices):
            want = _ms(c.op.key) if c.op is not None else 0.0
            assert float(full.table[row, col]) == want
            assert full.source[row][col] == ("measured" if c.op is not None else "illegal")
    assert full.fixed_ms == pytest.approx(sum(_ms(op.key) for op in fbnet.fixed_ops()))
    full.check()


def test_expected_gradient_matches_central_differences(full: LatencyTable) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(full.table.shape, generator=gen, dtype=torch.float64)
    probs = torch.softmax(logits.masked_fill(~full.mask, -math.inf), dim=1).requires_grad_()
    full.expected(probs).backward()
    assert probs.grad is not None
    h = 1e-6
    numeric = torch.zeros_like(probs)
    with torch.no_grad():
        for row in range(probs.shape[0]):
            for col in range(probs.shape[1]):
                step = torch.zeros_like(probs)
                step[row, col] = h
                up, down = full.expected(probs + step), full.expected(probs - step)
                numeric[row, col] = (up - down) / (2 * h)
    torch.testing.assert_close(probs.grad, numeric, rtol=1e-6, atol=1e-8)
    # and the value itself, computed independently of the tensor
    manual = full.fixed_ms + sum(
        probs[r, c].item() * full.table[r, c].item()
        for r in range(probs.shape[0])
        for c in range(probs.shape[1])
    )
    assert float(full.expected(probs.detach())) == pytest.approx(manual, rel=1e-12)


def test_expected_of_one_hot_is_exact_and_follows_dtype(
    fbnet: SearchSpace, full: LatencyTable
) -> None:
    for seed in range(4):
        arch = fbnet.random_arch(seed)
        idx = full.index(arch)
        one_hot = torch.zeros(full.table.shape, dtype=torch.float64)
        one_hot[range(len(idx)), idx] = 1.0
        exact = full.exact(arch)
        assert float(full.expected(one_hot)) == pytest.approx(exact, rel=1e-12)
        direct = sum(_ms(op.key) for op in fbnet.arch_ops(arch))  # every block of the child
        assert exact == pytest.approx(direct, rel=1e-12)
        low = full.expected(one_hot.float())
        assert low.dtype == torch.float32 and float(low) == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match=r"probs: expected shape \(22, 9\)"):
        full.expected(torch.zeros(21, 9))


def test_index_names_and_illegal_choices(fbnet: SearchSpace, full: LatencyTable) -> None:
    arch = fbnet.random_arch(3)
    idx = full.index(arch)
    assert full.names(idx) == arch
    assert full.index(fbnet.arch_to_json(arch)) == idx
    assert full.exact(idx) == full.exact(list(arch))
    bad = list(idx)
    bad[1] = fbnet.candidates.index("skip")  # tbs2 changes shape: skip is illegal there
    with pytest.raises(ArchError, match=r"tbs2: 'skip' is illegal"):
        full.exact(bad)
    with pytest.raises(ArchError, match="out of range"):
        full.index([9] * 22)
    with pytest.raises(ArchError, match="expected 22 entries"):
        full.index(idx[:-1])


def test_bounds_and_summary(fbnet: SearchSpace, full: LatencyTable) -> None:
    lo, hi = full.bounds()
    legal = [[_ms(c.op.key) for c in layer.legal if c.op] for layer in fbnet.layers()]
    assert lo == pytest.approx(full.fixed_ms + sum(min(r) for r in legal))
    assert hi == pytest.approx(full.fixed_ms + sum(max(r) for r in legal))
    summary = full.summary()
    assert summary["cells"] == {
        "measured": 192,
        "predicted": 0,
        "free": 0,
        "missing": 0,
        "illegal": 6,
    }
    assert "skip" not in summary["layers"]["tbs2"] and "skip" in summary["layers"]["tbs1"]
    json.dumps(summary)


def test_service_json_file_round_trip(fbnet: SearchSpace, tmp_path: Path) -> None:
    keys = _keys(fbnet)
    found = _found(fbnet, predicted=frozenset({keys[5]}))
    del found[keys[7]]  # and one op nobody measured
    path = tmp_path / "table.yaml"  # the extension does not matter
    path.write_text(json.dumps(_service_table(fbnet, found).model_dump(mode="json"), indent=1))
    table = LatencyTable.from_file(path)  # the space is rebuilt from the file
    assert table.space.params() == fbnet.params()
    assert table.meta["device"] == "phone" and table.meta["revision"] == 2
    cells = {
        op.key: s
        for layer, row in zip(fbnet.layers(), table.source, strict=True)
        for c, s in zip(layer.choices, row, strict=True)
        if (op := c.op)
    }
    assert cells[keys[5]] == "predicted" and cells[keys[7]] == "missing"
    assert {s for k, s in cells.items() if k not in (keys[5], keys[7])} == {"measured"}
    with pytest.raises(ValueError, match="1 cells have no latency"):
        table.check(allow_predicted=True)
    other = create_space("fbnet", resolution=64, width=0.5)
    with pytest.raises(ValueError, match=re.escape(f"{path}: its fixed ops are not those of")):
        LatencyTable.from_file(path, space=other)


class _FakeClient:
    def __init__(self, answer: LutOut):
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    def lut(self, *args: Any) -> LutOut:
        self.calls.append(args)
        return self.answer


def test_from_service_makes_one_call_and_checks_the_layout(fbnet: SearchSpace) -> None:
    client = _FakeClient(_service_table(fbnet, _found(fbnet)))
    table = LatencyTable.from_service(client, "phone", fbnet)  # type: ignore[arg-type]
    assert client.calls == [("phone", "fbnet", 32, 0.5, 1000, None)]
    assert table.source == [
        ["measured" if c.op else "illegal" for c in layer.choices] for layer in fbnet.layers()
    ]
    table.check()
    other = create_space("fbnet", resolution=32, width=1.0)
    with pytest.raises(ValueError, match="device phone: its fixed ops are not those"):
        LatencyTable.from_service(client, "phone", other)  # type: ignore[arg-type]
    darts = create_space("darts", resolution=16, C=4, cells=5)
    darts_client = _FakeClient(_service_table(darts, _found(darts)))
    LatencyTable.from_service(darts_client, "phone", darts).check()  # type: ignore[arg-type]
    assert darts_client.calls[0][-1] == {"C": 4, "cells": 5}


def test_profile_lut_file_round_trip(
    fbnet: SearchSpace, full: LatencyTable, tmp_path: Path
) -> None:
    lut = new_lut({}, "f00dfeed", {"runtime": "ort-mobile"}, {}, fbnet.params())
    lut["ops"] = {k: {"median_ms": _ms(k), "samples": 30} for k in _keys(fbnet)}
    path = tmp_path / "lut.json"
    save_lut(path, lut)
    table = LatencyTable.from_file(path)
    assert torch.equal(table.table, full.table) and table.fixed_ms == full.fixed_ms
    assert table.meta["device"] == "f00dfeed" and table.meta["runtime"] == "ort-mobile"
    table.check()
    lut["space"] = None
    save_lut(path, lut)
    with pytest.raises(ValueError, match=r"does not say which space.*pass the space"):
        LatencyTable.from_file(path)
    assert torch.equal(LatencyTable.from_file(path, space=fbnet).table, full.table)


def test_proxyless_yaml_round_trip(fbnet: SearchSpace, full: LatencyTable, tmp_path: Path) -> None:
    """The table written as ProxylessNAS yaml reads back cell for cell, by that format's
    conventions: its identity `skip` costs 0 (ProxylessNAS's zero), the head is the sum
    of its Conv_1 and Logits rows, and 1e-05 stays a number (YAML 1.1)."""
    fmt = create_format("proxyless-yaml")
    stem, head = (op.key for op in fbnet.fixed_ops())
    cells = {k: Cell(_ms(k), None, None) for k in _keys(fbnet)}
    cells[stem] = Cell(1e-05, None, None)
    entries, notes = entries_for(fmt, fbnet.slots(), cells)
    text = fmt.render(entries, "\n".join(notes))
    assert "mean: 1.0e-05" in text and "tbs" not in text  # with the dot YAML 1.1 needs
    path = tmp_path / "lut.json"  # YAML content under a .json name
    path.write_text(text)
    table = LatencyTable.from_file(path, space=fbnet)
    free = torch.tensor(
        [
            [s == "measured" and c.name == "skip" for c, s in zip(layer.choices, row, strict=True)]
            for layer, row in zip(fbnet.layers(), full.source, strict=True)
        ]
    )
    assert torch.equal(table.table, torch.where(free, 0.0, full.table).to(table.table.dtype))
    assert table.fixed_ms == 1e-05 + _ms(head)
    table.check()
    assert table.meta["format"] == "proxyless-yaml" and table.meta["unmapped_count"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json: [", "cannot tell its format from its content"),
        ('{"hello": 1}', "cannot tell its format from its content"),
        ('{"format": "hwlat-lut/9", "ops": {}}', "'hwlat-lut/9' is not supported"),
        ('{"format": "hwlat-lut/1", "space": null}', "malformed latency table"),
        ('"k":\n  mean: -1\n', "mean must be a finite number >= 0 ms"),
    ],
)
def test_bad_files_name_the_file(
    fbnet: SearchSpace, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content.replace('"k"', '"Conv-input:32x32x3-output:16x16x8"'))
    with pytest.raises(ValueError, match=message) as err:
        LatencyTable.from_file(path, space=fbnet)
    assert str(err.value).startswith(str(path))
    with pytest.raises(ValueError, match="cannot read"):
        LatencyTable.from_file(tmp_path / "absent.json")


def test_check_names_missing_and_predicted_cells(fbnet: SearchSpace) -> None:
    keys = _keys(fbnet)
    fixed_key = fbnet.fixed_ops()[0].key
    holes = {k: (_ms(k), "measured") for k in keys[15:]}  # fixed ops and 13 cells missing
    with pytest.raises(ValueError, match=r"(\d+) cells have no latency") as err:
        LatencyTable.from_cells(fbnet, holes, {"from": "x.json"}).check(allow_predicted=True)
    text = str(err.value)
    assert text.startswith("x.json: ") and f"fixed[0] ({fixed_key})" in text
    assert "and " in text and "more" in text and "hwlat jobs add" in text
    gone = set(keys[:15])
    cells = sum(1 for layer in fbnet.layers() for c in layer.choices if c.op and c.op.key in gone)
    assert int(text.split(": ")[1].split()[0]) == 2 + cells
    one = fbnet.layers()[3].choices[2]
    assert one.op is not None
    guessed = {k: (_ms(k), "predicted" if k == one.op.key else "measured") for k in keys}
    table = LatencyTable.from_cells(fbnet, guessed)
    with pytest.raises(ValueError, match="pass --allow-predicted") as err:
        table.check()
    assert f"tbs4/{one.name} ({one.op.key})" in str(err.value)
    table.check(allow_predicted=True)
    with pytest.raises(ValueError, match="source must be measured or predicted"):
        LatencyTable.from_cells(fbnet, {keys[0]: (1.0, "guessed")})


def test_a_profile_file_is_read_at_its_drift_corrected_values(
    fbnet: SearchSpace, full: LatencyTable, tmp_path: Path
) -> None:
    """`hwlat profile` keeps raw and corrected values; a searcher takes the corrected."""
    lut = new_lut({}, "f00dfeed", {"runtime": "ort-cpu"}, {}, fbnet.params())
    lut["ops"] = {
        k: {"median_ms": 1.2 * _ms(k), "raw_ms": 1.2 * _ms(k), "corrected_ms": _ms(k)}
        for k in _keys(fbnet)
    }
    path = tmp_path / "lut.json"
    save_lut(path, lut)
    table = LatencyTable.from_file(path)
    assert torch.equal(table.table, full.table) and table.fixed_ms == full.fixed_ms
