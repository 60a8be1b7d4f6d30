"""Predictor and network-estimate accuracy on this machine, from nothing, end to end.

Starts `hwlat serve`, registers a device for the runtime, queues `--samples` random
configurations per kind plus the space's ops and `--networks` random architectures,
runs one agent until the queue is empty (or `--agent-timeout` seconds), trains the
predictors and runs `hwlat validate`.
Prints held-out predictor accuracy per kind, raw and calibrated network error, Kendall τ,
and how many measurements and minutes the device needed.

    .venv/bin/python bench/predictor_accuracy.py --runtime ort-cpu --samples 300 --networks 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwlat.end_to_end import sample_archs, spread_archs
from latency_service.client import HwlatClient
from profiler.sampling import sample_ops
from searchers.spaces import create_space
from tests.devices.service_harness import ADMIN, Service

HWLAT = [sys.executable, "-m", "hwlat.cli"]
KINDS = ("mbconv", "shuffle", "sep_conv")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="ort-cpu")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("--spread", action="store_true", help="networks cheapest to largest")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated op kinds")
    ap.add_argument(
        "--agent-timeout",
        type=float,
        help="stop the agent after this many seconds and go on with what it measured",
    )
    args = ap.parse_args()
    print(
        f"command: .venv/bin/python bench/predictor_accuracy.py --runtime {args.runtime} "
        f"--samples {args.samples} --networks {args.networks} --kinds {args.kinds}"
        + (" --spread" if args.spread else "")
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        env = {
            **os.environ,
            "XDG_DATA_HOME": str(d),
            "HWLAT_CACHE_DIR": str(d / "cache"),
            "HWLAT_ADMIN_TOKEN": ADMIN,
        }
        svc = Service(d / "svc", f"sqlite:///{d}/svc.db", lease_s=300).start()
        try:
            finished = measure_and_train(args, svc.url, env)
            report = validate(args, svc.url, env, d / "val", finished)
        finally:
            svc.stop()
    for name in ("raw", "calibrated"):
        m = report.get(name)
        if m:
            print(
                f"  network {name:<10} mean|err| {m['mean_abs_error']:.1%}  "
                f"max {m['max_abs_error']:.1%}  ±5% {m['within_5pct']:.0%}  "
                f"±10% {m['within_10pct']:.0%}  "
                f"tau {m['kendall_tau']:.3f}"
            )


def measure_and_train(args: argparse.Namespace, url: str, env: dict[str, str]) -> bool:
    """Queue, measure, train, print the predictors; whether the agent emptied the queue."""
    space = create_space(args.space, resolution=args.resolution)
    with HwlatClient(url, admin_token=ADMIN, timeout=1800) as admin:
        token = admin.create_device("bench", args.runtime).token
        for kind in args.kinds.split(","):
            admin.enqueue_ops("bench", [op.key for op in sample_ops(kind, args.samples, seed=1)])
        admin.enqueue_space("bench", args.space, args.resolution)
        archs = (spread_archs if args.spread else sample_archs)(space, args.networks, seed=1)
        nets = [{"space": args.space, "resolution": args.resolution, "arch": a} for a in archs]
        admin.enqueue_networks("bench", nets)
        t0 = time.perf_counter()
        run_agent(url, token, env, args.agent_timeout)
        minutes = (time.perf_counter() - t0) / 60
        device = admin.get_device("bench")
        finished = not (device.work.get("pending") or device.work.get("leased"))
        if not finished:
            print(f"agent stopped at --agent-timeout; work items: {device.work}")
        done = "" if finished else " (not all measured)"
        print(
            f"device needed {device.measurements} op measurements + {args.networks} "
            f"networks{done}, {minutes:.1f} min of agent time"
        )
        trained = admin.train("bench")
    for p in trained.trained:
        m = p.metrics[p.model]
        print(
            f"  {p.kind:<10} {p.model:<14} n={p.samples:<5} RMSPE {m['rmspe']:.1%}  "
            f"±5% {m['within_5pct']:.1%}  ±10% {m['within_10pct']:.1%} (held-out folds)"
        )
        for name, c in sorted(p.metrics.items(), key=lambda kv: kv[1]["rmspe"]):
            rmspe, within = c["rmspe"], c["within_10pct"]
            print(f"      candidate {name:<16} RMSPE {rmspe:.1%}  ±10% {within:.1%}")
    return finished


def validate(
    args: argparse.Namespace, url: str, env: dict[str, str], out_dir: Path, finished: bool
) -> dict:
    """`hwlat validate` on the networks the agent measured; {} when it cannot run."""
    cmd = [
        *HWLAT,
        "validate",
        "--device",
        "bench",
        "--space",
        args.space,
        "-r",
        str(args.resolution),
        "--networks",
        str(args.networks),
        "--seed",
        "1",
        "--server",
        url,
        "--out-dir",
        str(out_dir),
        "--json",
        # with the queue left unfinished no agent will measure the rest: do not wait
        *([] if finished else ["--timeout-s", "5"]),
        *(["--spread"] if args.spread else []),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  networks not validated: {done.stderr.strip()[-300:]}")
        return {}
    return dict(json.loads(done.stdout))


def run_agent(url: str, token: str, env: dict[str, str], timeout: float | None) -> None:
    """One agent until the queue is empty, or SIGTERM at `timeout` (it uploads what it
    has measured and hands the rest back)."""
    cmd = [*HWLAT, "agent", "--server", url, "--token", token, "--once", "--quiet"]
    agent = subprocess.Popen(cmd, env=env)
    try:
        agent.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        agent.terminate()
        agent.wait(timeout=120)
        return
    if agent.returncode != 0:
        raise SystemExit(f"the agent exited {agent.returncode}")


if __name__ == "__main__":
    main()
