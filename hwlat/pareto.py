"""The accuracy–latency Pareto front of a search that scored many candidates (SPOS,
FairNAS: every architecture the evolution scored), as JSON and as a PNG, and printed.

Accuracy is the search-validation accuracy with the shared supernet weights, BN
statistics re-estimated per path: a ranking signal, not what a network trained alone
reaches (`retrain` in arch.json is that). Latency is the table sum, and the calibrated
end-to-end estimate beside it when the constraint was on that estimate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from latency_service.calibration_formula import estimate
from searchers.core.loop import Searcher

FORMAT = "hwlat-pareto/1"


def front_record(s: Searcher, record: dict[str, Any]) -> dict[str, Any] | None:
    """What pareto.json holds: the constraint, the front, the top k, the chosen one."""
    sel = record["selection"]
    if not sel.get("pareto"):
        return None
    window = record["target"].get("window") or {}
    cal = window.get("calibration") if window.get("on") == "calibrated estimate" else None

    def row(r: dict[str, Any]) -> dict[str, Any]:
        out = {"table_ms": r["table_ms"], "val_acc": r["val_acc"],
               "choices": list(s.table.names(r["columns"]))}  # fmt: skip
        if cal is not None:
            out["calibrated_ms"] = estimate(
                cal["form"], cal["coef"], cal["intercept"], r["table_ms"], cal["ops"]
            )
        return out

    return {
        "format": FORMAT,
        "searcher": record["searcher"],
        **{k: record[k] for k in ("space", "resolution", "width", "classes")},
        "accuracy": "search-validation, shared weights, BN recalibrated per path",
        "constraint_table_ms": record["target"].get("window_ms"),
        "constraint": window or None,
        "evaluated": sel.get("evaluated", len(sel["scored"])),
        "chosen": {"table_ms": record["table_ms"], "choices": record["arch"].get("choices")},
        "front": [row(r) for r in sel["pareto"]],
        "topk": [row(r) for r in sel.get("topk", [])],
        "generations": sel.get("generations", []),
    }


def write_front(s: Searcher, record: dict[str, Any], out: Path) -> Path | None:
    """`<stem>.pareto.json` and `<stem>.pareto.png` beside `out`; returns the PNG."""
    data = front_record(s, record)
    if data is None:
        return None
    out.with_name(out.stem + ".pareto.json").write_text(json.dumps(data, indent=1))
    png = out.with_name(out.stem + ".pareto.png")
    plot(record, png)
    record["pareto"] = {"json": out.stem + ".pareto.json", "png": png.name}
    return png


def plot(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = record["selection"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    scored = sel["scored"]
    ax.scatter([r["table_ms"] for r in scored], [r["val_acc"] for r in scored], s=8,
               c="0.7", label=f"scored ({len(scored)})")  # fmt: skip
    top = sel.get("topk", [])
    ax.scatter([r["table_ms"] for r in top], [r["val_acc"] for r in top], s=22,
               c="tab:orange", label=f"top {len(top)}")  # fmt: skip
    front = sel["pareto"]
    ax.plot([r["table_ms"] for r in front], [r["val_acc"] for r in front], "o-",
            c="tab:blue", ms=4, label="Pareto front")  # fmt: skip
    best = record["shared_weights"]["search_val_acc"]
    ax.scatter([record["table_ms"]], [best], marker="*", s=160, c="tab:red", label="chosen")
    lo, hi = record["target"].get("window_ms") or (None, None)
    for x in (lo, hi):
        if x:
            ax.axvline(x, ls="--", c="0.4", lw=1)
    ax.set_xlabel("table latency (ms); dashed: the constraint")
    ax.set_ylabel("search-val accuracy (shared weights)")
    ax.set_title(f"{record['searcher']} on {record['space']}@{record['resolution']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_front(console: Console, record: dict[str, Any]) -> None:
    sel = record["selection"]
    t = Table(title=f"Pareto front of {sel.get('evaluated', len(sel['scored']))} scored "
              "(search-val accuracy, shared weights)")  # fmt: skip
    for col in ("table ms", "val acc", "top k", "chosen"):
        t.add_column(col, justify="right")
    top = {tuple(r["columns"]) for r in sel.get("topk", [])}
    chosen = (record["table_ms"], record["shared_weights"]["search_val_acc"])
    for r in sel["pareto"]:
        mark = "★" if (r["table_ms"], r["val_acc"]) == chosen else ""
        t.add_row(f"{r['table_ms']:.4f}", f"{r['val_acc']:.1%}",
                  "✓" if tuple(r["columns"]) in top else "", mark)  # fmt: skip
    console.print(t)
    gens = sel.get("generations") or []
    if gens:
        per = sum(g["seconds"] for g in gens[1:]) / max(len(gens) - 1, 1)
        console.print(
            f"evolution: {len(gens) - 1} generations, {per:.2f} s each; best search-val "
            f"accuracy {gens[0]['best_val_acc']:.1%} (random population) -> "
            f"{gens[-1]['best_val_acc']:.1%}"
        )
