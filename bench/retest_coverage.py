"""Do hwlat's reported 95% intervals cover a re-measurement? Retests through the real
service and agent, side by side with the measurements' own intervals.

Starts `hwlat serve` on a scratch SQLite file, registers this machine as an ort-cpu
device, queues `--n` random ops of each `--kinds` (profiler.sampling), runs `hwlat agent
--once` (the reference panel with every batch, the service's re-measuring rules), then
queues a retest of every measured op (`jobs:retest`) and runs the agent again. Prints,
per kind, from GET /v1/devices/{name}/repeatability: the pairs, agreement within
±5/10%, the coverage of the measurements' own intervals, and the coverage of the
intervals hwlat now reports (leave-one-out where they are calibrated on these retests;
nominal 95%), with the between-session sigma and where it comes from; then the median
relative half-width lookups report before and after the between-session term, and how
the panel's sigma alone (what lookups use before a kind has 20 retests) covers the pairs.

    .venv/bin/python bench/retest_coverage.py [--kinds mbconv conv] [--n 120] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwlat.demo_service import HWLAT, background_service, choose_port  # noqa: E402
from latency_service.client import HwlatClient  # noqa: E402
from profiler.sampling import sample_ops  # noqa: E402

DEVICE = "retest-bench"


def agent(url: str, token: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*HWLAT, "agent", "--server", url, "--token", token, "--once"], check=True)
    return time.perf_counter() - t0


def widths(c: HwlatClient, keys: list[str]) -> dict[str, float]:
    """Median relative half-width of the lookups: the measurement's own and reported."""
    out = c.latency_batch(DEVICE, keys).results.values()
    own = [r.within_ci_half_width_ms / r.median_ms for r in out if r.within_ci_half_width_ms]
    rep = [r.ci_half_width_ms / r.median_ms for r in out if r.ci_half_width_ms]
    return {"own": statistics.median(own), "reported": statistics.median(rep)}


def panel_alone(db: Path, kinds: list[str]) -> dict[str, Any]:
    """Per kind, how the intervals would cover its retest pairs with the panel's sigma
    (what lookups use before a kind has 20 retests), read from the service's database."""
    from sqlalchemy import select

    from latency_service.db import make_engine, session_factory
    from latency_service.models import Device
    from latency_service.repository import uncertainty as terms
    from profiler.uncertainty import covered

    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_factory(engine)() as s:
            device = s.scalars(select(Device).where(Device.name == DEVICE)).one()
            found, between = terms.assess(s, device, kinds)
    finally:
        engine.dispose()
    sigma = between.panel.sigma
    out: dict[str, Any] = {"sigma": sigma, "panel_pairs": between.panel.pairs}
    for kind, pairs in found.items():
        raw = [p.raw for p in pairs if p.raw.usable()]
        out[kind] = sum(covered(p, sigma) for p in raw) / len(raw) if raw else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=["mbconv", "conv"])
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    admin = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory() as tmp,
        background_service(Path(tmp), admin, choose_port(None, False)) as svc,
        HwlatClient(svc.url, admin_token=admin, timeout=600) as c,
    ):
        token = c.create_device(DEVICE, "ort-cpu").token
        keys = {k: [op.key for op in sample_ops(k, args.n, args.seed)] for k in args.kinds}
        c.enqueue_ops(DEVICE, [key for ks in keys.values() for key in ks])
        first = agent(svc.url, token)
        for kind in args.kinds:
            c.retest(DEVICE, kind, args.n, seed=args.seed)
        second = agent(svc.url, token)
        report = c.repeatability(DEVICE, args.kinds).model_dump(mode="json")
        report["widths"] = {k: widths(c, ks) for k, ks in keys.items()}
        report["panel_alone"] = panel_alone(svc.db, args.kinds)
    report.update(started=started, load_before=load, agent_s=[first, second], n=args.n)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


def print_report(r: dict[str, Any]) -> None:
    print(
        f"command: .venv/bin/python bench/retest_coverage.py --n {r['n']} (started "
        f"{r['started']}, load before {r['load_before']:.2f}, agent runs "
        f"{r['agent_s'][0]:.0f} s + {r['agent_s'][1]:.0f} s)"
    )
    head = ("kind", "pairs", "±5%", "±10%", "own CI cov", "reported cov", "nominal", "basis")
    print("".join(f"{h:>13}" for h in head) + "        sigma  half-width own → reported")
    for kind, k in r["kinds"].items():
        w = r["widths"][kind]
        own = "-" if k["ci_coverage"] is None else f"{k['ci_coverage']:.1%}"
        sigma = "-" if k["sigma"] is None else f"{k['sigma']:.2%}"
        shares = (f"{k['within_5pct']:.1%}", f"{k['within_10pct']:.1%}", own)
        cov = (f"{k['reported_ci_coverage']:.1%}", f"{k['nominal']:.0%}", k["ci_basis"])
        cells = (kind, k["pairs"], *shares, *cov)
        print(
            "".join(f"{c!s:>13}" for c in cells)
            + f"{sigma:>13}  ±{w['own']:.1%} → ±{w['reported']:.1%}"
        )

    pa = r["panel_alone"]
    sigma = "-" if pa["sigma"] is None else f"{pa['sigma']:.2%}"
    covers = ", ".join(f"{k} {pa[k]:.1%}" for k in r["kinds"] if pa.get(k) is not None)
    print(f"with the panel's sigma alone ({sigma}, {pa['panel_pairs']} panel pairs): {covers}")


if __name__ == "__main__":
    main()
