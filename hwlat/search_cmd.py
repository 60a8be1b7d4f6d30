"""`hwlat search proxyless|fbnet`: a hardware-aware search against a device's latency table.

The table comes from the service (one call, `--device`) or from a LUT file (`--lut`:
`hwlat profile`/`hwlat lut` output or a ProxylessNAS yaml). After the search the
exported architecture is measured end to end — here, when the table is a local LUT
measured on this machine, or by the device's agents as a network work item — and its
table latency, the service's calibrated estimate and the measurement are printed side
by side.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwlat.errors import fail
from hwlat.verify import measure_here, measure_on_device
from latency_service.cli import DEFAULT_SERVER, Admin, Server, Token, client
from latency_service.predictors.calibration import table_for
from searchers import data as datasets
from searchers._registry import create_searcher, list_searchers
from searchers.base import SearchConfig, Searcher, SearchResult
from searchers.latency import LatencyTable
from searchers.losses import LOSSES, HardTarget, LatencyLoss, SoftLatency
from searchers.retrain import retrain
from searchers.spaces import SearchSpace, create_space

FORMAT = "hwlat-arch/1"


def search(
    searcher: Annotated[str, typer.Argument(help="proxyless or fbnet")],
    space_name: Annotated[str, typer.Option("--space")] = "proxyless-mobile",
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    device: Annotated[str | None, typer.Option("--device", help="Table from the service.")] = None,
    lut: Annotated[Path | None, typer.Option("--lut", help="Table from a LUT file.")] = None,
    target_ms: Annotated[float | None, typer.Option("--target-ms")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance")] = 0.03,
    constraint: Annotated[str, typer.Option("--constraint", help="eq or le")] = "eq",
    soft: Annotated[
        bool, typer.Option("--soft", help="A fixed latency weight, no repair.")
    ] = False,
    calibrated: Annotated[
        bool,
        typer.Option(
            "--calibrated-target",
            help="--target-ms is end to end: map it through the device's calibration.",
        ),
    ] = False,
    loss: Annotated[str, typer.Option("--loss", help=" | ".join(LOSSES))] = "mul#log",
    dataset: Annotated[str, typer.Option("--dataset")] = "digits",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 3,
    warmup_epochs: Annotated[int, typer.Option("--warmup-epochs", min=0)] = 0,
    arch_every: Annotated[
        int, typer.Option("--arch-every", min=1, help="An architecture step every k steps.")
    ] = 1,
    arch_lr: Annotated[float, typer.Option("--arch-lr")] = 0.05,
    lr: Annotated[float, typer.Option("--lr")] = 0.02,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    mode: Annotated[str, typer.Option("--mode", help="proxyless: full_v2 or two")] = "full_v2",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    allow_predicted: Annotated[bool, typer.Option("--allow-predicted")] = False,
    retrain_epochs: Annotated[
        int, typer.Option("--retrain-epochs", min=0, help="Train the result from scratch.")
    ] = 2,
    verify: Annotated[bool, typer.Option("--verify/--no-verify")] = True,
    runtime: Annotated[str | None, typer.Option("--runtime", help="With --lut.")] = None,
    out: Annotated[Path, typer.Option("--out")] = Path("arch.json"),
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    token: Token = None,
) -> None:
    """Search an architecture that meets a latency target on a device."""
    if searcher not in list_searchers_loaded():
        fail(f"searcher: one of {', '.join(list_searchers_loaded())}, got {searcher!r}")
    if (device is None) == (lut is None):
        fail("give the table with either --device NAME (service) or --lut FILE")
    if calibrated and device is None:
        fail("--calibrated-target needs --device (the calibration lives in the service)")
    config = SearchConfig(epochs, warmup_epochs, arch_every, lr, 4e-5, arch_lr, seed)
    plain = create_space(space_name, resolution=resolution, width=width)
    data = datasets.load(dataset, plain.resolution, batch_size, seed)
    space = create_space(space_name, resolution=resolution, width=width, classes=data.classes)
    console = Console(stderr=True)
    with client(server, admin_token, token) as c:
        table = _table(space, device, lut, c)
        table.check(allow_predicted)
        mapped = None
        if calibrated and target_ms is not None:
            target_ms, mapped = table_target(c, device, space, target_ms)  # type: ignore[arg-type]
        latency = _latency(target_ms, tolerance, constraint, soft, loss)
        if isinstance(latency, HardTarget):
            _reachable(table, latency)
        kw: dict[str, Any] = {"mode": mode} if searcher == "proxyless" else {}
        s = create_searcher(searcher, table=table, data=data, config=config, latency=latency, **kw)
        result = _run(s, console)
        record = export(s, result, table, latency, c if device else None, device)
        record["target"]["end_to_end"] = mapped
        record["retrain_acc"] = retrain(space, record["arch"], data, retrain_epochs, seed=seed)
        if verify:
            record["measured"] = (
                measure_on_device(c, device, space, record["arch"])
                if device
                else measure_here(lut, runtime, space, record["arch"])  # type: ignore[arg-type]
            )
    out.write_text(json.dumps(record, indent=1))
    print_summary(Console(), record)
    Console().print(f"architecture written to {out}")


def list_searchers_loaded() -> list[str]:
    import searchers.fbnet
    import searchers.proxyless  # noqa: F401

    return list_searchers()


def _latency(
    target_ms: float | None, tolerance: float, constraint: str, soft: bool, loss: str
) -> LatencyLoss:
    if target_ms is None and not (soft and loss == "fbnet"):
        fail("--target-ms T is required (only --soft --loss fbnet runs without a target)")
    if soft:
        return SoftLatency(loss, target_ms)
    if constraint not in ("eq", "le"):
        fail(f"--constraint: eq or le, got {constraint!r}")
    c: Literal["eq", "le"] = "eq" if constraint == "eq" else "le"
    return HardTarget(target_ms, c, tolerance)  # type: ignore[arg-type]


def table_target(
    c: Any, device: str, space: SearchSpace, target_ms: float
) -> tuple[float, dict[str, Any]]:
    """The table latency whose calibrated estimate is `target_ms` end to end. The device's
    calibration is monotone in the table sum (linear: a·sum + b·ops + c; power:
    e^c·sum^a·ops^b) and a chain architecture always has the same number of ops, so the
    map is exact."""
    if not (target_ms > 0 and math.isfinite(target_ms)):
        fail(f"--target-ms: must be a positive number, got {target_ms}")
    arch = space.arch_to_json(space.random_arch(0))
    est = c.estimate(device, {**space.params(), "arch": arch})
    cal = est.calibration
    if not cal.get("available") or cal["coef"][0] <= 0:
        fail(
            f"--calibrated-target: device {device} has no usable calibration yet; measure "
            f"networks end to end first (`hwlat validate --device {device} --space "
            f"{space.name}`)"
        )
    form = cal.get("form", "linear")  # a service from before the power form sends none
    table_ms = table_for(form, cal["coef"], cal["intercept"], target_ms, est.ops)
    if table_ms <= 0:
        fail(f"--target-ms {target_ms}: below what the calibration says any network can do")
    info = {"target_ms": target_ms, "table_target_ms": table_ms, "calibration": cal}
    return table_ms, info


def _reachable(table: LatencyTable, hard: HardTarget) -> None:
    """Refuse a target no architecture of the table can meet before training anything."""
    lo, hi = table.bounds()
    t, tol = hard.target_ms, hard.tolerance
    if t < lo or (hard.constraint == "eq" and t * (1 - tol) > hi):
        fail(
            f"--target-ms {t:g}: the achievable range of this table is {lo:.4g}..{hi:.4g} ms "
            "(fixed ops included); pick a target inside it"
        )


def _table(space: SearchSpace, device: str | None, lut: Path | None, c: Any) -> LatencyTable:
    if device is not None:
        return LatencyTable.from_service(c, device, space)
    assert lut is not None  # one of the two, checked by the caller
    return LatencyTable.from_file(lut, space)


def _run(s: Searcher, console: Console) -> SearchResult:
    steps = s.config.epochs
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{s.name} search, epoch 1/{steps}", total=steps)

        def show(row: dict[str, Any]) -> None:
            bar.advance(task)
            bar.update(task, description=f"{s.name} search, epoch {row['epoch'] + 1}/{steps}")
            bar.console.print(
                f"epoch {row['epoch']}: val acc {row['val_acc']:.1%}  "
                f"E[LAT] {row['expected_ms']:.3f} ms  argmax {row['argmax_ms']:.3f} ms  "
                f"latency weight {row['latency_weight']:.3f}"
                + ("  (warm-up)" if row["warmup"] else "")
            )

        return s.run(show)


def export(
    s: Searcher,
    result: SearchResult,
    table: LatencyTable,
    latency: LatencyLoss,
    c: Any,
    device: str | None,
) -> dict[str, Any]:
    space = s.space
    arch = space.arch_to_json(result.choices)
    record: dict[str, Any] = {
        "format": FORMAT,
        "searcher": s.name,
        **space.params(),
        "arch": arch,
        "table_ms": result.table_ms,
        "target": _target(latency),
        "repair": result.repair,
        "val_acc": s.accuracy(result.columns),
        "table": table.meta,
        "history": result.history,
    }
    if c is not None and device is not None:
        est = c.estimate(device, {**space.params(), "arch": arch})
        record["estimate"] = est.model_dump()
    return record


def _target(latency: LatencyLoss) -> dict[str, Any]:
    if isinstance(latency, HardTarget):
        return {
            "mode": "hard",
            "target_ms": latency.target_ms,
            "tolerance": latency.tolerance,
            "constraint": latency.constraint,
            "final_lambda": latency.lam,
        }
    return {"mode": "soft", "loss": latency.form, "target_ms": latency.target_ms}


def print_summary(console: Console, record: dict[str, Any]) -> None:
    t = Table(title=f"{record['searcher']} on {record['space']}@{record['resolution']}")
    t.add_column("what")
    t.add_column("value", justify="right")
    target = record["target"]
    if target.get("target_ms"):
        t.add_row("target (table)", f"{target['target_ms']:.3f} ms ({target['mode']})")
    e2e = target.get("end_to_end")
    if e2e:
        t.add_row("target end to end", f"{e2e['target_ms']:.3f} ms (calibrated)")
    t.add_row("table latency", f"{record['table_ms']:.3f} ms")
    est = record.get("estimate") or {}
    if est.get("calibrated_ms"):
        t.add_row("calibrated estimate", f"{est['calibrated_ms']:.3f} ms")
    m = record.get("measured")
    if m:
        t.add_row("measured end to end", f"{m['median_ms']:.3f} ms ({m['where']})")
        t.add_row("table vs measured", f"{record['table_ms'] / m['median_ms'] - 1:+.1%}")
        if est.get("calibrated_ms"):
            t.add_row("calibrated vs measured", f"{est['calibrated_ms'] / m['median_ms'] - 1:+.1%}")
    if record.get("repair"):
        t.add_row("layers repaired", str(len(record["repair"]["changed"])))
    t.add_row("val. accuracy, supernet weights", f"{record['val_acc']:.1%}")
    acc = record.get("retrain_acc") or []
    if acc:
        t.add_row(f"val. accuracy, retrained {len(acc)} epochs", f"{acc[-1]:.1%}")
    console.print(t)
    console.print("choices: " + " ".join(record["arch"]["choices"]))
