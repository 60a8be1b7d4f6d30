"""`hwlat search --retrain-top K`: train the K best-scored candidates from scratch and
export the one that trains best, as One-Shot (Bender et al.) and SMASH do.

A shared-weight (or generated-weight) score is a proxy: Bender et al. rank sampled
architectures with the one-shot model, then train the top ones alone and keep the best;
SMASH retrains its best. Here the K best of what the selection scored (distinct
architectures, ranked by their search-validation accuracy with the shared weights) are
each trained by `searchers.retrain` with identical settings, and the one with the highest
*search-validation* accuracy after training is exported — the test split is read once
per finalist, reported, and never used to choose. Every finalist was scored inside the
latency constraint, so the export stays inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from searchers.core.loop import Searcher, SearchResult
from searchers.retrain import Retrained, retrain
from searchers.spaces._chain import ChainSpace

Progress = Callable[[int, int], None]  # (finalist done, of K)


class NoFinalists(ValueError):
    """The selection scored fewer than two candidates: nothing to choose among."""


def finalists(result: SearchResult, k: int) -> list[dict[str, Any]]:
    """The k best distinct rows the selection scored (best first; faster first on ties)."""
    rows = [r for r in result.selection.get("considered", []) if "columns" in r]
    best: dict[tuple[int, ...], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (-r["val_acc"], r["table_ms"])):
        best.setdefault(tuple(row["columns"]), row)
    return list(best.values())[:k]


def retrain_top(
    s: Searcher,
    result: SearchResult,
    k: int,
    train: Callable[[list[str]], Retrained],
    progress: Progress | None = None,
) -> tuple[SearchResult, Retrained]:
    """(the result with the finalist that trained best, its training record); the
    selection gains `finalists` (each one's shared and retrained accuracies)."""
    if not isinstance(s.space, ChainSpace):
        raise ValueError(f"--retrain-top: {s.name} on {s.space.name} exports no scored pool")
    rows = finalists(result, k)
    if len(rows) < 2:
        raise NoFinalists(
            f"--retrain-top: {s.name}'s selection scored {len(rows)} candidate(s); it needs "
            "a searcher that scores many (spos, fairnas, oneshot, smash, enas, fbnet)"
        )
    trained: list[Retrained] = []
    for i, row in enumerate(rows):
        trained.append(train(list(s.table.names(row["columns"]))))
        if progress:
            progress(i + 1, len(rows))
    pick = max(range(len(rows)), key=lambda i: (final_val(trained[i]), -i))
    cols = list(rows[pick]["columns"])
    selection = {
        **result.selection,
        "how": f"{result.selection['how']}; the top {len(rows)} retrained, best val kept",
        "finalists": [
            {
                "columns": row["columns"],
                "choices": list(s.table.names(row["columns"])),
                "table_ms": row["table_ms"],
                **({"repaired": True} if row.get("repaired") else {}),
                "shared_val_acc": row["val_acc"],
                "retrained_val_acc": final_val(t),
                "retrained_test_acc": t.test_acc,
                "chosen": i == pick,
            }
            for i, (row, t) in enumerate(zip(rows, trained, strict=True))
        ],
    }
    same = cols == result.columns
    chosen = replace(
        result,
        columns=cols,
        proposed_ms=result.proposed_ms if same else s.table.exact(cols),
        repair=result.repair if same else None,  # a finalist was scored inside the target
        choices=s.table.names(cols),
        table_ms=s.table.exact(cols),
        selection=selection,
        val_acc=rows[pick]["val_acc"],
        test_acc=s.score(cols, split="test"),
        arch=s.table.names(cols),
    )
    return chosen, trained[pick]


def train_with(
    s: Searcher, epochs: int, lr: float, seed: int, device: str
) -> Callable[[list[str]], Retrained]:
    """How every finalist is trained: the same settings as the plain `--retrain-epochs`."""
    return lambda choices: retrain(s.space, choices, s.data, epochs, lr, seed, device)


def final_val(t: Retrained) -> float:
    return t.val_acc[-1] if t.val_acc else float("-inf")
