"""Two devices' tables for one space, cell by cell: the ratio of their latencies and how
well one ranks the ops (and random architectures) like the other.

A NAS user with a table from a device they do not own wants to know how far their own
device's numbers are from it: a constant factor (a faster phone) changes nothing in a
search's ranking; a low rank correlation means the table ranks architectures
differently and a search against it finds another architecture.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from searchers.latency import LatencyTable, _service_cells
from searchers.spaces import SearchSpace

_OUTLIERS = 8


def _cells(lut: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """where -> (op key, kind, cell) over the fixed ops and every legal cell."""
    out = {f"fixed[{i}]": c for i, c in enumerate(lut["fixed"])}
    for layer in lut["layers"]:
        out.update({f"{layer['name']}/{n}": c for n, c in layer["cells"].items() if c})
    return {w: (c["key"], c["key"].split("|", 1)[0], c) for w, c in out.items()}


def compare_tables(
    space: SearchSpace, a: dict[str, Any], b: dict[str, Any], archs: int = 1000
) -> dict[str, Any]:
    from scipy.stats import kendalltau, spearmanr

    ca, cb = _cells(a), _cells(b)
    rows, left_out = [], {"missing in one": 0, "predicted in one": 0, "0 ms in one": 0}
    for where, (key, kind, x) in ca.items():
        y = cb[where][2]
        if x["ms"] is None or y["ms"] is None:
            left_out["missing in one"] += 1
        elif "predicted" in (x["source"], y["source"]):
            left_out["predicted in one"] += 1
        elif x["ms"] <= 0 or y["ms"] <= 0:  # a format's free op (ProxylessNAS zero)
            left_out["0 ms in one"] += 1
        else:
            rows.append(
                {"where": where, "key": key, "kind": kind, "a_ms": x["ms"], "b_ms": y["ms"]}
            )
    if len(rows) < 3:
        raise ValueError(
            f"only {len(rows)} cells are measured in both {a['device']} and {b['device']} "
            f"for {space.name}@{space.resolution}: nothing to compare"
        )
    xs = np.array([r["a_ms"] for r in rows])
    ys = np.array([r["b_ms"] for r in rows])
    ratio = ys / xs
    median = float(np.median(ratio))
    for r, q in zip(rows, ratio, strict=True):
        r["ratio"], r["vs_median"] = float(q), float(q / median)
    worst = sorted(rows, key=lambda r: -abs(math.log(r["vs_median"])))[:_OUTLIERS]
    return {
        "devices": [a["device"], b["device"]],
        "revisions": [a["revision"], b["revision"]],
        **space.params(),
        "cells": len(rows),
        "left_out": left_out,
        "ratio": {
            "median": median,
            "p10": float(np.quantile(ratio, 0.1)),
            "p90": float(np.quantile(ratio, 0.9)),
            "min": float(ratio.min()),
            "max": float(ratio.max()),
        },
        "spearman": float(spearmanr(xs, ys).statistic),
        "kendall": float(kendalltau(xs, ys).statistic),
        "archs": _archs(space, a, b, archs),
        "outliers": worst,
        "rows": rows,
    }


def _archs(
    space: SearchSpace, a: dict[str, Any], b: dict[str, Any], n: int
) -> dict[str, Any] | None:
    """Rank agreement of `n` random architectures' table latencies (None when a table
    has holes: an architecture's sum would be undefined)."""
    from scipy.stats import kendalltau, spearmanr

    if n < 3:
        return None
    tables = [LatencyTable.from_cells(space, _service_cells(t, space)[1]) for t in (a, b)]
    if any(t.cells("missing") for t in tables):
        return None
    picks = [space.random_arch(seed) for seed in range(n)]
    la, lb = ([t.exact(p) for p in picks] for t in tables)
    tau = float(kendalltau(la, lb).statistic)
    return {"n": n, "spearman": float(spearmanr(la, lb).statistic), "kendall": tau,
            "pair_agreement": (1 + tau) / 2}  # fmt: skip


def plot_comparison(r: dict[str, Any], path: Path) -> None:
    """Log-log scatter of the cells (one colour per op kind), with y = median ratio · x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = r["devices"]
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=110)
    for kind in sorted({row["kind"] for row in r["rows"]}):
        mine = [row for row in r["rows"] if row["kind"] == kind]
        xs, ys = [row["a_ms"] for row in mine], [row["b_ms"] for row in mine]
        ax.scatter(xs, ys, s=12, alpha=0.7, label=kind)
    lo = min(min(row["a_ms"], row["b_ms"]) for row in r["rows"])
    hi = max(max(row["a_ms"], row["b_ms"]) for row in r["rows"])
    line = np.array([lo, hi])
    ax.plot(
        line,
        line * r["ratio"]["median"],
        "k--",
        lw=1,
        label=f"× {r['ratio']['median']:.3g} (median)",
    )
    from matplotlib.ticker import FormatStrFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(f"{a} (ms)")
    ax.set_ylabel(f"{b} (ms)")
    ax.set_title(
        f"{r['space']}@{r['resolution']}: {r['cells']} cells, Spearman ρ {r['spearman']:.3f}"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
