"""What `hwlat search` shows and writes: the per-epoch progress, the `hwlat-arch/2`
record and the summary table (the demo uses them too)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from searchers.core.checkpoint import Checkpoint
from searchers.core.loop import Searcher, SearchResult
from searchers.core.losses import HardTarget, LatencyLoss
from searchers.latency import LatencyTable

FORMAT = "hwlat-arch/2"
ACCURACIES = (("argmax_acc", "argmax"), ("sampled_acc", "sampled"), ("mixed_acc", "mixed"))


def epoch_line(row: dict[str, Any]) -> str:
    """One line per epoch: what the supernet learnt and where the latency stands."""
    accs = "  ".join(f"{label} {row[k]:.1%}" for k, label in ACCURACIES if k in row)
    parts = [
        f"epoch {row['epoch']}/{row['epochs']}" + (" (warm-up)" if row["warmup"] else ""),
        f"loss {row['train_loss']:.3f}",
        f"val acc {accs}",
    ]
    if "fairness" in row:  # train-then-search: no distribution, the paths drawn
        parts.append(f"paths {row['sampled_ms']:.4f} ms  count spread {row['fairness']:.2f}")
    elif "sampled_ms" in row:  # a controller (ENAS): the children it sampled
        parts.append(f"children {row['sampled_ms']:.4f} ms  p entropy {row['entropy']:.2f}")
    else:
        parts += [f"p entropy {row['entropy']:.2f}", f"E[LAT] {row['expected_ms']:.4f} ms"]
    if row.get("reward") is not None:
        parts.append(f"reward {row['reward']:.3f}")
    if row.get("inside") is not None:
        parts.append(f"inside {row['inside']:.0%}")
    if "drop_rate" in row:
        parts.append(f"drop {row['drop_rate']:.2f} ({row['mean_paths']:.1f} paths a layer)")
    if "argmax_ms" in row:
        parts.append(f"argmax {row['argmax_ms']:.4f} ms")
    if "stage" in row:
        ops = "/".join(map(str, row["ops_per_edge"]))
        parts.insert(1, f"stage {row['stage']} ({row['cells']} cells, {ops} ops per edge)")
    if "temperature" in row:
        parts.append(f"τ {row['temperature']:.2f}")
    if "fairness" not in row:
        parts.append(f"λ {row['latency_weight']:.2f}")
    return "  ".join(parts)


def run_with_progress(
    s: Searcher, console: Console, checkpoint: Checkpoint | None = None
) -> SearchResult:
    epochs, done = s.total_epochs(), s.epoch
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{s.name} search", total=epochs, completed=done)

        def show(row: dict[str, Any]) -> None:
            bar.advance(task)
            left = "selecting" if row["epoch"] == epochs else f"epoch {row['epoch'] + 1}/{epochs}"
            bar.update(task, description=f"{s.name} search, {left}")
            bar.console.print(epoch_line(row))

        def generation(g: dict[str, Any]) -> None:
            bar.update(task, description=f"{s.name} evolution, generation {g['generation']}")
            bar.console.print(generation_line(g))

        bar.update(task, description=f"{s.name} search, epoch {done + 1}/{epochs}")
        s.select_progress = generation
        return s.run(show, checkpoint)


def generation_line(g: dict[str, Any]) -> str:
    return (
        f"generation {g['generation']}  best {g['best_val_acc']:.1%}  top-k mean "
        f"{g['topk_mean_val_acc']:.1%}  population mean {g['population_mean_val_acc']:.1%}  "
        f"({g['scored']} scored, {g['seconds']:.1f} s)"
    )


def export(
    s: Searcher,
    result: SearchResult,
    table: LatencyTable,
    latency: LatencyLoss | None,
    c: Any,
    device: str | None,
) -> dict[str, Any]:
    space, data = s.space, s.data
    arch = space.arch_to_json(result.choices if result.arch is None else result.arch)
    record: dict[str, Any] = {
        "format": FORMAT,
        "searcher": s.name,
        "paper": s.paper,
        **space.params(),
        "arch": arch,
        "table_ms": result.table_ms,
        "proposed_ms": result.proposed_ms,
        "target": target_record(latency),
        "repair": result.repair,
        "selection": {
            "how": result.selection["how"],
            "scored": result.selection["considered"],
            **{k: v for k, v in result.selection.items() if k not in ("how", "considered")},
        },
        "shared_weights": {"search_val_acc": result.val_acc, "test_acc": result.test_acc},
        "config": asdict(s.config),
        "data": {
            "dataset": data.name,
            "data_seed": data.data_seed,
            "batch_size": data.batch_size,
            "train": len(data.train),
            "search_val": len(data.val),
            "test": len(data.test),
        },
        "table": table.meta,
        "history": result.history,
    }
    deployment = table.meta.get("deployment")
    if deployment is not None:  # trained at the data's size, timed at the table's
        record["deployment"] = {**deployment, "arch": {**arch, **deployment}}
    if c is not None and device is not None:
        at = record["deployment"]["arch"] if deployment is not None else arch
        est = c.estimate(device, {**(deployment or space.params()), "arch": at})
        record["estimate"] = est.model_dump()
    return record


def target_record(latency: LatencyLoss | None) -> dict[str, Any]:
    if latency is None:
        return {"mode": "none"}
    if isinstance(latency, HardTarget):
        return {
            "mode": "hard",
            "target_ms": latency.target_ms,
            "tolerance": latency.tolerance,
            "constraint": latency.constraint,
            "window_ms": list(latency.window()),
            "final_lambda": latency.lam,
        }
    return {"mode": "soft", "loss": latency.form, "target_ms": latency.target_ms}


def print_summary(console: Console, record: dict[str, Any]) -> None:
    t = Table(title=f"{record['searcher']} on {record['space']}@{record['resolution']}")
    deployment = record.get("deployment")
    t.add_column("what")
    t.add_column("value", justify="right")
    target = record["target"]
    window = target.get("window")
    if window:
        lo, hi = target["window_ms"]
        span = (f"{window['min_ms']:.4f}..{window['max_ms']:.4f}" if window["min_ms"]
                else f"≤ {window['max_ms']:.4f}")  # fmt: skip
        t.add_row("constraint", f"{span} ms ({window['on']})")
        if window["on"] != "table sum":
            t.add_row("constraint (table)", f"{lo:.4f}..{hi:.4f} ms")
    elif target.get("target_ms"):
        t.add_row("target (table)", f"{target['target_ms']:.4f} ms ({target['mode']})")
    e2e = target.get("end_to_end")
    if e2e:
        t.add_row("target end to end", f"{e2e['target_ms']:.4f} ms (calibrated)")
    at = f" @{deployment['resolution']}, {deployment['classes']} classes" if deployment else ""
    t.add_row("table latency" + at, f"{record['table_ms']:.4f} ms")
    repair = record.get("repair")
    if repair:
        t.add_row("search's own choice", f"{record['proposed_ms']:.4f} ms")
        if "edges" in repair:
            t.add_row("edges repaired", f"{len(repair['changed'])} of {repair['edges']}")
        else:
            t.add_row("layers repaired", str(len(repair["changed"])))
    est = record.get("estimate") or {}
    if est.get("calibrated_ms"):
        t.add_row("calibrated estimate", f"{est['calibrated_ms']:.4f} ms")
    m = record.get("measured")
    if m and "skipped" in m:
        t.add_row("measured end to end", f"not here: {m['skipped']}")
    elif m:
        t.add_row("measured end to end", f"{m['median_ms']:.4f} ms ({m['where']})")
        t.add_row("table vs measured", f"{record['table_ms'] / m['median_ms'] - 1:+.1%}")
        if est.get("calibrated_ms"):
            t.add_row("calibrated vs measured", f"{est['calibrated_ms'] / m['median_ms'] - 1:+.1%}")
    shared = record["shared_weights"]
    t.add_row("test accuracy, supernet weights", f"{shared['test_acc']:.1%}")
    retrained = record.get("retrain") or {}
    if retrained.get("test_acc") is not None:
        t.add_row(
            f"test accuracy, retrained {retrained['epochs']} epochs",
            f"{retrained['test_acc']:.1%}",
        )
    for i, f in enumerate(record["selection"].get("finalists", [])):
        t.add_row(
            f"finalist {i + 1}{' (chosen)' if f['chosen'] else ''}",
            f"{f['table_ms']:.4f} ms, shared {f['shared_val_acc']:.1%} → retrained val "
            f"{f['retrained_val_acc']:.1%}, test {f['retrained_test_acc']:.1%}",
        )
    console.print(t)
    arch = record["arch"]
    if "route" in arch:  # DenseNAS: the routing blocks kept, then their layers' choices
        console.print("route: " + " ".join(map(str, arch["route"])))
    if "choices" in arch:
        console.print("choices: " + " ".join(arch["choices"]))
        return
    for cell in ("normal", "reduce"):  # a genotype: node i <- (op, input) x 2
        nodes = [arch[cell][i : i + 2] for i in range(0, len(arch[cell]), 2)]
        edges = "  ".join(f"n{i}←{a[0]}({a[1]}),{b[0]}({b[1]})" for i, (a, b) in enumerate(nodes))
        console.print(f"{cell}: {edges}")
