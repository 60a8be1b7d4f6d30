"""The contract every registered searcher keeps (a new algorithm joins by registering):
a tiny search on a tiny space learns something, exports an architecture that rebuilds
into exactly its ops, lands inside the latency constraint, reports per-epoch figures,
and is deterministic under its seed."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from searchers.core.cell_search import CellSearcher
from searchers.core.loop import SearchResult
from searchers.core.losses import HardTarget
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, list_searchers, searcher_class
from searchers.spaces.densenas import DenseNas

# a supernet small enough for a test where the defaults are not (P-DARTS: 5, 11, 17 cells)
EVOLUTION = {"population": 8, "topk": 3, "generations": 2, "mutations": 4, "crossovers": 4}
SMALL: dict[str, dict[str, object]] = {
    "pdarts": {"stages": "3,4", "ops": "8,4", "skip_dropout": "0.1,0.3"},
    "spos": EVOLUTION,
    "fairnas": EVOLUTION,
    "oneshot": {"random_archs": 8},
    "smash": {"random_archs": 8},
}


def _tiny(name: str, table: LatencyTable, data: Data, seed: int = 0) -> SearchResult:
    cls = searcher_class(name)
    lo, hi = cls.table_bounds(table)
    config = replace(
        cls.Config(),
        epochs=2,
        warmup_epochs=1,
        bn_calib_batches=1,
        seed=seed,
        **SMALL.get(name, {}),
    )
    hard = HardTarget(lo + 0.3 * (hi - lo), "eq", 0.05)
    s = create_searcher(name, table=table, data=data, config=config, latency=hard)
    result = s.run()
    assert hard.satisfied(result.table_ms), (name, result.table_ms, hard.target_ms)
    return result


@pytest.fixture
def setting(
    request: pytest.FixtureRequest, name: str, tiny_table: LatencyTable, tiny_data: Data
) -> tuple[LatencyTable, Data]:
    """The chain searchers search TinyChain, the cell searchers the DARTS space, the
    routing searchers (DenseNAS) a tiny DenseNAS space."""
    cls, get = searcher_class(name), request.getfixturevalue
    if issubclass(cls, CellSearcher):
        return get("tiny_cell_table"), get("tiny_cell_data")
    if issubclass(cls.space_kind, DenseNas):
        return get("tiny_dense_table"), get("tiny_dense_data")
    return tiny_table, tiny_data


# the all-paths cell supernets (14 mixed edges a cell) take 10-20 s a contract here
SLOW = {"darts", "pcdarts", "pdarts"}
CONTRACT = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in list_searchers()]


@pytest.mark.parametrize("name", CONTRACT)
def test_contract(name: str, setting: tuple[LatencyTable, Data]) -> None:
    tiny_table, tiny_data = setting
    result = _tiny(name, tiny_table, tiny_data)
    space = tiny_table.space
    arch = space.arch_to_json(result.arch)
    child = space.build_child(arch)
    assert child.specs == space.arch_ops(arch)  # type: ignore[attr-defined]
    r = space.resolution
    assert child(torch.randn(2, 3, r, r)).flatten(1).shape == (2, space.classes)
    assert tiny_table.exact(result.columns) == pytest.approx(result.table_ms)
    epochs = result.history[-1]["epochs"]  # P-DARTS: 2 per stage
    assert [row["epoch"] for row in result.history] == list(range(1, epochs + 1)) and epochs >= 2
    for row in result.history:
        assert {"train_loss", "entropy", "expected_ms", "latency_weight"} <= set(row)
        accs = [v for k, v in row.items() if k.endswith("_acc")]  # argmax_acc, sampled_acc
        assert accs and all(0.0 <= a <= 1.0 for a in accs)
    assert 0.0 <= result.test_acc <= 1.0 and 0.0 <= result.val_acc <= 1.0
    again = _tiny(name, tiny_table, tiny_data)
    assert again.columns == result.columns and _figures(again) == _figures(result)
    a, b = (
        create_searcher(name, table=tiny_table, data=tiny_data, config=c, latency=None)
        for c in (searcher_class(name).Config(seed=0), searcher_class(name).Config(seed=1))
    )
    first = next(iter(a.net.state_dict().values()))
    assert not torch.equal(first, next(iter(b.net.state_dict().values())))  # seeded init


def _figures(result: SearchResult) -> list[dict[str, object]]:
    """The history without wall times."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]


def test_registry_names_and_errors(tiny_table: LatencyTable, tiny_data: Data) -> None:
    assert {"proxyless", "fbnet"} <= set(list_searchers())
    with pytest.raises(ValueError, match="searcher: unknown searcher 'nasnet'"):
        create_searcher("nasnet")
    with pytest.raises(ValueError, match="takes a ProxylessConfig"):
        create_searcher(
            "proxyless",
            table=tiny_table,
            data=tiny_data,
            config=searcher_class("fbnet").Config(),
            latency=None,
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", list_searchers())
def test_contract_on_cuda(name: str, setting: tuple[LatencyTable, Data]) -> None:
    """The same tiny search with the supernet on the GPU: it lands inside the target and
    chooses what the CPU run chooses within the search's own noise (the kernels differ)."""
    tiny_table, tiny_data = setting
    cls = searcher_class(name)
    lo, hi = cls.table_bounds(tiny_table)
    hard = HardTarget(lo + 0.3 * (hi - lo), "eq", 0.05)
    config = replace(cls.Config(), epochs=2, warmup_epochs=1, **SMALL.get(name, {}))
    s = create_searcher(
        name, table=tiny_table, data=tiny_data, config=config, latency=hard, device="cuda"
    )
    assert next(s.net.parameters()).is_cuda
    result = s.run()
    assert hard.satisfied(result.table_ms)
    assert all(
        0.0 <= v <= 1.0 for row in result.history for k, v in row.items() if k.endswith("_acc")
    )
