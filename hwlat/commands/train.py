"""`hwlat train`: cross-validate latency predictors for a device's unmeasured ops and
print how good they are on held-out folds, next to how well the labels repeat."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Json, Server, emit
from hwlat.commands.connect import client
from hwlat.commands.devices import repeat_table


def train(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Default: every kind.")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Candidate to cross-validate (repeatable; a blend brings its parts; `all`: "
            "every registered one). Default: the registry's default set "
            "(docs/ARCHITECTURE.md, Predictors).",
        ),
    ] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Train latency predictors for a device's unmeasured ops; print their accuracy."""
    with (
        client(server, admin_token) as c,
        Console(stderr=True).status(
            f"training predictors for {device} (k-fold cross-validation)..."
        ),
    ):
        out = c.train(device, kind, models=model)
    if as_json:
        emit(out.model_dump(mode="json"), True)
        return
    table = Table(
        "kind",
        "version",
        "model",
        "samples",
        "RMSPE",
        "±5%",
        "±10%",
        title=f"predictors of {device} (held-out folds)",
    )
    for p in out.trained:
        m = p.metrics[p.model]
        table.add_row(
            p.kind,
            str(p.version),
            p.model,
            str(p.samples),
            f"{m['rmspe']:.1%}",
            f"{m['within_5pct']:.1%}",
            f"{m['within_10pct']:.1%}",
        )
    Console().print(table)
    for k, q in out.quiet_labels.items():
        typer.echo(
            f"{k} on its quiet labels ({q.labels} of {q.of}, every CI within "
            f"±{q.ci_limit:.0%}): {q.within_10pct:.1%} within ±10%, {q.within_5pct:.1%} "
            f"within ±5%, RMSPE {q.rmspe:.1%}"
        )
    if out.repeatability:
        title = "how well the labels repeat (retests): the ceiling on the shares above"
        Console().print(repeat_table(out.repeatability, title))
    for k, why in out.skipped.items():
        typer.echo(f"skipped {k}: {why}")
