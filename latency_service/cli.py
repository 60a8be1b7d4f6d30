"""Service commands: `hwlat serve`, and the thin clients `devices` and `jobs`, with the
helpers every client command shares (`cli_data.py` has `train`, `query` and `lut`)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.errors import fail
from latency_service.client import HwlatClient
from latency_service.config import ServiceSettings, data_dir

Server = Annotated[str, typer.Option("--server", envvar="HWLAT_SERVER", help="Service URL.")]
Admin = Annotated[
    str | None,
    typer.Option(
        "--admin-token", envvar="HWLAT_ADMIN_TOKEN", help="Admin token (default: the local one)."
    ),
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="HWLAT_TOKEN", help="Agent or read token.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_SERVER = "http://127.0.0.1:8000"

devices_app = typer.Typer(help="Register and inspect devices.", no_args_is_help=True)
jobs_app = typer.Typer(help="Queue profiling work for devices.", no_args_is_help=True)


def admin_token_file() -> Path:
    return data_dir() / "admin-token"


def local_admin_token(create: bool) -> str | None:
    """The admin token `hwlat serve` keeps in the data dir (made on first start)."""
    path = admin_token_file()
    if path.exists():
        return path.read_text().strip() or None
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "hwa_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def client(server: str, admin: str | None = None, token: str | None = None) -> HwlatClient:
    if admin is None and server.startswith(("http://127.0.0.1", "http://localhost")):
        admin = local_admin_token(create=False)
    return HwlatClient(server, token=token, admin_token=admin, retries=3)


def emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        Console().print(table)


def serve(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: SQLite file in the user data dir)."),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 1,
) -> None:
    """Migrate the database to the latest schema, then serve the API (uvicorn)."""
    import uvicorn

    from latency_service.db import normalise_url
    from latency_service.migrate import upgrade

    if db:
        os.environ["HWLAT_DATABASE_URL"] = db
    if not os.environ.get("HWLAT_ADMIN_TOKEN"):
        os.environ["HWLAT_ADMIN_TOKEN"] = local_admin_token(create=True) or ""
        where = f"in {admin_token_file()}"
    else:
        where = "from HWLAT_ADMIN_TOKEN"
    settings = ServiceSettings()
    upgrade(normalise_url(settings.database_url))
    typer.echo(
        f"hwlat service on http://{host}:{port} ({workers} worker(s)); database "
        f"{settings.database_url.split('@')[-1]}; admin token {where}",
        err=True,
    )
    uvicorn.run(
        "latency_service.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def _device_table(devices: list[Any]) -> Table:
    table = Table()
    for col in ("device", "runtime", "rev", "measurements", "work", "coverage", "last seen"):
        table.add_column(col)
    for d in devices:
        work = ", ".join(f"{k} {v}" for k, v in sorted(d.work.items())) or "-"
        cov = ", ".join(f"{c.space}@{c.resolution} {c.measured}/{c.total}" for c in d.coverage)
        table.add_row(
            d.name,
            d.runtime,
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


@jobs_app.command("add")
def jobs_add(
    device: Annotated[str, typer.Option("--device")],
    space: Annotated[str | None, typer.Option("--space")] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    op: Annotated[list[str] | None, typer.Option("--op", help="Op key (repeatable).")] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue a space's ops (or --op KEY ...) that are neither measured nor queued."""
    if (space is None) == (not op):
        fail("give either --space NAME --resolution R or one or more --op KEY")
    with client(server, admin_token) as c:
        if op:
            result = c.enqueue_ops(device, op)
        else:
            assert space is not None
            result = c.enqueue_space(
                device, space, resolution, width, classes, parse_options(option or [])
            )
    _job_table(result.model_dump(), as_json)


@jobs_app.command("sample")
def jobs_sample(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str, typer.Option("--kind", help="mbconv, shuffle, sep_conv, ...")],
    n: Annotated[int, typer.Option("--n", min=1, max=100_000)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Default float32 (--refine: the predictor's).")
    ] = None,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine",
            help="sample near the ops the current predictor gets most wrong (train first)",
        ),
    ] = False,
    worst_fraction: Annotated[
        float,
        typer.Option(
            "--worst-fraction", min=0.0, max=1.0, help="With --refine: share of training ops."
        ),
    ] = 0.1,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue N random configurations of a kind: training data for its predictor
    (with --refine: near the ops its current predictor gets most wrong)."""
    if refine:
        if dtype is not None:
            fail("--dtype: --refine samples in the dtype of the kind's predictor")
        with client(server, admin_token) as c:
            refined = c.refine(device, kind, n, seed, worst_fraction)
        _job_table(refined.model_dump(), as_json)
        return
    from profiler.sampling import sample_ops

    keys = [op.key for op in sample_ops(kind, n, seed, dtype or "float32")]
    with client(server, admin_token) as c:
        result = c.enqueue_ops(device, keys)
    _job_table(result.model_dump(), as_json)


def _job_table(counts: dict[str, Any], as_json: bool) -> None:
    """What `jobs add` and `jobs sample` print; with the refine figures when present."""
    table = Table("total", "new", "already measured", "already queued")
    row = [str(counts[k]) for k in ("total", "new", "already_measured", "already_queued")]
    if "worst" in counts:
        table.add_column("worst ops")
        table.add_column("their mean |error|")
        row += [str(counts["worst"]), f"{counts['worst_mean_abs_error']:.1%}"]
    table.add_row(*row)
    emit(counts, as_json, table)


def parse_options(items: list[str]) -> dict[str, int]:
    """--option NAME=INT values as a dict; a malformed one is a CLI error."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.lstrip("-").isdigit():
            fail(f"--option: expected NAME=INT, got {item!r}")
        out[name] = int(value)
    return out
