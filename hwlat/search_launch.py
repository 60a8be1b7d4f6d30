"""`hwlat search NAME --nproc N`: the search on N processes of this machine, or on the
ranks of a launcher that started this one (torchrun: WORLD_SIZE in the environment).

Without a launcher, N > 1 starts N processes here (spawned, each running the same
command with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and a free
MASTER_PORT), waits for them and returns; under a launcher this process joins the
group (gloo on CPU, NCCL on CUDA; searchers/core/distributed.py says what is split
and what is kept identical). Every rank searches; rank 0 alone prints, checkpoints, and
after the search goes on alone (retraining, measuring, writing the export), while the
others leave quietly with exit code 0. If a rank fails, the others are stopped and the
command fails with that rank's error line.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

import torch
import torch.distributed as tdist

from hwlat.commands.common import CliError
from latency_service.client import HwlatError
from profiler.errors import MeasureError
from searchers.core.distributed import Dist
from searchers.core.loop import Searcher

STOP_GRACE_S = 5.0  # a stopped rank gets this long to exit before it is killed


def launched() -> bool:
    """Whether a launcher (torchrun, or `--nproc` here) started this process as a rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join_or_launch(
    target: Callable[..., None], args: dict[str, Any], nproc: int, batch_size: int, device: str
) -> Dist | None:
    """This process's place: a rank of the launcher's group, one process (N = 1), or None
    when N processes were started here and have finished `target(**args)`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if launched() and nproc not in (1, world):
        raise CliError(f"--nproc {nproc}: the launcher started {world} processes; drop --nproc")
    n = world if launched() else nproc
    if batch_size % n:
        raise CliError(f"--batch-size {batch_size} does not split over {n} processes; "
                       f"pass a multiple of {n}")  # fmt: skip
    if n > 1 and not launched():
        if device == "cuda" and torch.cuda.device_count() < n:
            raise CliError(f"--nproc {n}: one GPU per process, and {torch.cuda.device_count()} "
                           "are visible")  # fmt: skip
        launch(target, args, n)
        return None
    if n > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(n)))
        torch.set_num_threads(max(1, _cores() // local))
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist.from_env(device)


def alone_after_search(s: Searcher, ranks: Dist) -> bool:
    """After the search: rank 0 goes on as one process (True); the others are done."""
    if not ranks.active:
        return True
    ranks.barrier()
    if ranks.rank == 0:
        s.leave_group()
    tdist.destroy_process_group()
    return ranks.rank == 0


def launch(target: Callable[..., None], args: dict[str, Any], n: int) -> None:
    """`target(**args)` on n spawned ranks; the first failure stops the rest."""
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    port = _free_port()
    procs = [
        ctx.Process(target=_rank, args=(target, args, rank, n, port, errors), name=f"rank{rank}")
        for rank in range(n)
    ]
    for p in procs:
        p.start()
    try:
        failed = _first_failure(procs)
    finally:
        _stop(procs)
    if failed is not None:
        rank, line = errors.get() if not errors.empty() else (failed, "exited with an error")
        raise CliError(f"rank {rank}: {line}")


def _first_failure(procs: Sequence[mp.process.BaseProcess]) -> int | None:
    """Wait for every rank; the first to exit non-zero, as soon as it does (None: none)."""
    running = dict(enumerate(procs))
    while running:
        wait([p.sentinel for p in running.values()])
        for rank, p in list(running.items()):
            if p.exitcode is None:
                continue
            del running[rank]
            if p.exitcode != 0:
                return rank
    return None


def _stop(procs: Sequence[mp.process.BaseProcess]) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(STOP_GRACE_S)
        if p.is_alive():
            p.kill()
            p.join()


def _rank(
    target: Callable[..., None], args: dict[str, Any], rank: int, n: int, port: int, errors: Any
) -> None:
    """One rank: the environment torchrun would give it, then the command itself."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(n), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(n), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    try:
        target(**args)
    except BaseException as exc:  # relayed as one line; the launcher stops the others
        if os.environ.get("HWLAT_DEBUG"):
            traceback.print_exc()
        known = isinstance(exc, (CliError, ValueError, OSError, MeasureError, HwlatError))
        errors.put((rank, str(exc) if known else f"{type(exc).__name__}: {exc}"))
        sys.exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
