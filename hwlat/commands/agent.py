"""`hwlat agent`: run a device agent against the service."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from devices.agent import Agent, AgentOptions, NetworkBuilder
from devices.config import AgentSettings
from devices.runtimes import create_runtime
from devices.spool import Spool
from hwlat.commands.common import fail
from latency_service.client import HwlatClient
from profiler.timing import TimingConfig


def agent(
    server: Annotated[
        str | None, typer.Option("--server", help="Service URL (HWLAT_SERVER).")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help="Agent token (HWLAT_TOKEN).")] = None,
    runtime: Annotated[str | None, typer.Option("--runtime", help="Default: the device's.")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Items per lease.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Drain the queue, then exit 0.")] = False,
    max_items: Annotated[int | None, typer.Option("--max-items", min=1)] = None,
    new_revision: Annotated[
        bool,
        typer.Option(
            "--new-revision",
            help="On a fingerprint change, start a new device revision instead of refusing.",
        ),
    ] = False,
    rel_tol: Annotated[float, typer.Option("--rel-tol")] = 0.02,
    budget_s: Annotated[float, typer.Option("--budget-s")] = 2.0,
    rounds: Annotated[int, typer.Option("--rounds")] = 3,
    min_sample_ms: Annotated[float, typer.Option("--min-sample-ms")] = 5.0,
    samples_per_round: Annotated[int, typer.Option("--samples-per-round")] = 10,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    reference: Annotated[
        bool | None,
        typer.Option(
            "--reference/--no-reference",
            help="Measure the reference panel (drift check; default on, HWLAT_AGENT_REFERENCE).",
        ),
    ] = None,
    reference_every: Annotated[
        int | None,
        typer.Option(
            "--reference-every",
            min=1,
            max=1000,
            help="Measure the panel with every Nth batch only (default 1, "
            "HWLAT_AGENT_REFERENCE_EVERY); with every batch it costs a noticeable share "
            "of the agent's time (docs/BENCHMARKS.md).",
        ),
    ] = None,
) -> None:
    """Lease profiling work for this device, measure it, upload the results."""
    settings = AgentSettings()
    server, token = server or settings.server, token or settings.token
    if not token:
        fail(
            "--token (or HWLAT_TOKEN) is required: the device's agent token from "
            "`hwlat devices add`"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    timing = TimingConfig.from_options(rel_tol, budget_s, rounds, min_sample_ms, samples_per_round)
    options = AgentOptions(
        batch=batch or settings.batch,
        max_items=max_items,
        once=once,
        heartbeat_s=settings.heartbeat_s,
        poll_s=settings.poll_s,
        new_revision=new_revision,
        reference=settings.reference if reference is None else reference,
        reference_every=reference_every or settings.reference_every,
    )
    # generous retries: an agent should ride out a service restart or a network blip
    with HwlatClient(server, token=token, retries=8) as client:
        me = client.me()
        if runtime is not None and runtime != me.runtime:
            fail(f"--runtime {runtime}: device {me.device!r} is registered for {me.runtime}")
        with create_runtime(me.runtime, threads=threads) as rt:
            spool = Spool.claim(settings.spool_dir, me.device)
            run_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
            worker = Agent(client, rt, timing, options, spool, run_id, network_builder())
            hello = worker.hello()
            _run(
                worker,
                hello.pending if max_items is None else min(hello.pending, max_items),
                f"{me.device} ({me.runtime}, rev {hello.revision})",
                quiet,
            )
            if spool.entries:
                fail(
                    f"{len(spool.entries)} measured batch(es) could not be uploaded and are "
                    f"kept in {spool.path}; run the agent again to upload them"
                )


def _total(bar: Progress, task: TaskID) -> float:
    return next(t.total or 0.0 for t in bar.tasks if t.id == task)


def _run(worker: Agent, total: int, label: str, quiet: bool) -> None:
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if worker.stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        worker.stop_event.set()  # finish the visit in hand, upload, release the rest

    for sig in previous:
        signal.signal(sig, on_signal)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=Console(stderr=True), disable=quiet) as bar:
            task = bar.add_task(label, total=total or None)
            worker.progress = lambda n: bar.advance(task, n)
            # ops the service queues again (machine disturbed) join this run's total
            worker.requeued = lambda n: bar.update(task, total=_total(bar, task) + n)
            worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def network_builder() -> NetworkBuilder:
    """Builds the child network of a network work item (searchers' spaces, injected here
    so that the agent package does not depend on the searchers)."""
    import torch

    from searchers.spaces import create_space

    def build(network: dict[str, Any]) -> tuple[Any, Any]:
        space = create_space(
            network["space"],
            resolution=network["resolution"],
            width=network["width"],
            classes=network["classes"],
            **network.get("options", {}),
        )
        arch = {k: v for k, v in network.items() if k not in ("options", "arch_hash")}
        module = space.build_child(arch)
        x = torch.randn(space.fixed_ops()[0].shape, generator=torch.Generator().manual_seed(0))
        return module, x

    return build
