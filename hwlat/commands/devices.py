"""`hwlat devices add|list|show|drift|token|repeatability`: register devices and see
what their agents measured, how steady the machine was and how well labels repeat."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Json, Server, Token, emit
from hwlat.commands.connect import client

devices_app = typer.Typer(help="Register and inspect devices.", no_args_is_help=True)


def _device_table(devices: list[Any]) -> Table:
    table = Table()
    for col in ("device", "runtime", "rev", "measurements", "work", "coverage", "last seen"):
        table.add_column(col)
    for d in devices:
        work = ", ".join(f"{k} {v}" for k, v in sorted(d.work.items())) or "-"
        cov = ", ".join(f"{c.space}@{c.resolution} {c.measured}/{c.total}" for c in d.coverage)
        imported = getattr(d, "source", "measured") == "imported"
        table.add_row(
            d.name,
            "imported" if imported else d.runtime,
            str(d.revision),
            str(d.measurements),
            work,
            cov or "-",
            str(d.last_seen_at or "never"),
        )
    return table


@devices_app.command("add")
def devices_add(
    name: str,
    runtime: Annotated[str, typer.Option("--runtime", help="e.g. ort-mobile")],
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Register a device and print its agent token (shown once)."""
    with client(server, admin_token) as c:
        created = c.create_device(name, runtime)
    if as_json:
        emit(created.model_dump(mode="json"), True)
        return
    typer.echo(
        f"device {name} ({runtime}) registered.\nagent token (shown once): "
        f"{created.token}\nstart an agent with: hwlat agent --server {server} "
        f"--token {created.token}"
    )


@devices_app.command("list")
def devices_list(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: Json = False
) -> None:
    """Devices with their measurement counts, queued work and coverage per space."""
    with client(server, token=token) as c:
        devices = c.list_devices()
    emit([d.model_dump(mode="json") for d in devices], as_json, _device_table(devices))


@devices_app.command("show")
def devices_show(
    name: str, server: Server = DEFAULT_SERVER, token: Token = None, as_json: Json = False
) -> None:
    """One device in full."""
    with client(server, token=token) as c:
        device = c.get_device(name)
        failed = c.list_work(name, "failed")
    data = {**device.model_dump(mode="json"), "failed": [w.model_dump(mode="json") for w in failed]}
    emit(data, as_json, _device_table([device]))
    if not as_json and device.provenance:
        table = Table("file", "format", "sha256", "imported", "for", "filled", "not in file",
                      "unused entries", title="imported from")  # fmt: skip
        for p in device.provenance:
            table.add_row(p.file_name, p.format, p.sha256[:12], f"{p.imported_at:%Y-%m-%d %H:%M}",
                          f"{p.space}@{p.resolution} ×{p.width:g}, {p.classes} classes",
                          str(p.mapped), str(p.unfilled), str(p.unmapped))  # fmt: skip
        Console().print(table)
    if not as_json and failed:
        table = Table("item", "op / network", "attempts", "last error", title="failed items")
        for w in failed:
            what = w.key or str((w.network or {}).get("space"))
            table.add_row(str(w.item_id), what, str(w.attempts), w.last_error or "")
        Console().print(table)


@devices_app.command("drift")
def devices_drift(
    name: str, server: Server = DEFAULT_SERVER, token: Token = None, as_json: Json = False
) -> None:
    """How steady the device's machine was per agent run (the reference panel's drift)."""
    with client(server, token=token) as c:
        out = c.drift(name)
    table = Table(
        "run",
        "batches",
        "flagged",
        "ops",
        "factor (median)",
        "min",
        "max",
        "last at",
        title=f"{out.device} rev {out.revision}: drift against the baseline "
        f"(panel {out.panel}, flagged beyond ±{out.tolerance:.0%})",
    )
    for r in out.runs:
        table.add_row(
            r.run_id, str(r.readings), str(r.flagged), str(r.measurements),
            f"{r.median_factor:.3f}", f"{r.min_factor:.3f}", f"{r.max_factor:.3f}",
            r.last_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    emit(out.model_dump(mode="json"), as_json, table)
    if not as_json and not out.runs:
        typer.echo(
            f"no reference readings for {name} yet: agents measure the panel with every "
            "batch unless run with --no-reference"
        )


@devices_app.command("token")
def devices_token(
    name: str,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    revoke: Annotated[
        str | None, typer.Option("--revoke", help="Revoke the token with this prefix instead.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Make another agent token for a device (or --revoke PREFIX)."""
    with client(server, admin_token) as c:
        if revoke:
            c.revoke_token(name, revoke)
            emit({"revoked": revoke}, as_json)
            if not as_json:
                typer.echo(f"revoked {revoke}")
            return
        out = c.add_token(name)
    emit(out.model_dump(), as_json)
    if not as_json:
        typer.echo(f"new agent token for {name} (shown once): {out.token}")


@devices_app.command("repeatability")
def devices_repeatability(
    name: str,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Default: all.")] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """How well the device's measurements repeat: retests against their labels.

    Queue retests with `hwlat jobs retest`."""
    with client(server, token=token) as c:
        out = c.repeatability(name, kind)
    table = repeat_table(out.kinds, f"{out.device} rev {out.revision}: retest / label")
    emit(out.model_dump(mode="json"), as_json, table)
    if not as_json and not out.kinds:
        typer.echo(
            f"no retests for {name} yet: queue some with `hwlat jobs retest --device "
            f"{name} --kind KIND`, then run an agent"
        )


def repeat_table(kinds: dict[str, Any], title: str) -> Table:
    names = ("kind", "pairs", "RMS", "±5%", "±10%", "median ratio", "CI coverage (own)")
    table = Table(*names, "reported CI coverage / nominal", title=title)
    for k, r in kinds.items():
        cover = "-" if r.ci_coverage is None else f"{r.ci_coverage:.0%}"
        shares = (f"{r.rmspe:.1%}", f"{r.within_5pct:.1%}", f"{r.within_10pct:.1%}")
        table.add_row(k, str(r.pairs), *shares, f"{r.median_ratio:.3f}", cover, _reported(r))
    return table


def _reported(r: Any) -> str:
    """E.g. `93% / 95% (retests, σ 3.1%)`: how the intervals lookups report now cover
    the retests, against the level they claim, and where their between-session term
    comes from."""
    got = "-" if r.reported_ci_coverage is None else f"{r.reported_ci_coverage:.0%}"
    basis = r.ci_basis or "within"
    term = basis if r.sigma is None else f"{basis}, σ {r.sigma:.1%}"
    return f"{got} / {r.nominal:.0%} ({term})"
