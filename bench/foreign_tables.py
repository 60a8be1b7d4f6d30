"""Foreign latency tables: every format read, mapped onto its space and written back, and
(`--search`) the acceptance search against a ProxylessNAS-style table at 224.

    .venv/bin/python bench/foreign_tables.py           # per format: filled, unmapped, round trip
    .venv/bin/python bench/foreign_tables.py --search  # + the search: --table-resolution 224,
                                                       #   --target-ms 100 --epochs 3 on digits

The tables are made up (a 4 GMAC/s law, each entry a few percent off it): the real files
are never downloaded. The 72 keys of ProxylessNAS's mobile table are those of its supernet
code (docs/GUIDE.md); the numbers are not Pixel 1's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.lutformats import create_format, entries_for, list_formats, map_entries
from searchers.latency import LatencyTable
from searchers.spaces import create_space
from tests.lut_fixtures import proxyless_mobile_yaml, synthetic_entries


def formats_table(repeats: int = 20) -> None:
    head = ("format", "space", "entries", "filled", "unfilled", "unmapped", "parse ms",
            "map ms", "export ms", "round trip")  # fmt: skip
    print(("{:18} {:18}" + " {:>9}" * 8).format(*head))
    for name in list_formats():
        fmt = create_format(name)
        space = create_space(fmt.space or "proxyless-mobile", resolution=224, classes=1000)
        text = fmt.render(synthetic_entries(name, space), "bench")
        t0 = time.perf_counter()
        for _ in range(repeats):
            entries = fmt.parse(text)
        t1 = time.perf_counter()
        for _ in range(repeats):
            mapped = map_entries(fmt, entries, space.slots())
        t2 = time.perf_counter()
        for _ in range(repeats):
            back, _ = entries_for(fmt, space.slots(), mapped.cells)
            out = fmt.render(back)
        t3 = time.perf_counter()
        ok = fmt.parse(out) == entries
        counts = (len(entries), len(mapped.cells), len(mapped.unfilled), len(mapped.unmapped))
        times = [f"{(b - a) / repeats * 1e3:.2f}" for a, b in ((t0, t1), (t1, t2), (t2, t3))]
        print(("{:18} {:18}" + " {:>9}" * 8).format(name, space.name, *counts, *times, str(ok)))


def acceptance_search(target: float, epochs: int, seeds: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lut = Path(tmp) / "mobile_trim.yaml"
        lut.write_text(proxyless_mobile_yaml())
        table = LatencyTable.from_file(lut)
        lo, hi = table.bounds()
        print(f"\ntable: {table.meta['entries']} entries, {table.meta['unmapped_count']} unmapped, "
              f"every cell filled; architectures {lo:.2f}..{hi:.2f} ms at 224")  # fmt: skip
        for seed in seeds:
            out = Path(tmp) / f"arch{seed}.json"
            cmd = [sys.executable, "-m", "hwlat.cli", "search", "proxyless", "--lut", str(lut),
                   "--table-resolution", "224", "--target-ms", str(target), "--dataset",
                   "digits", "--epochs", str(epochs), "--seed", str(seed),
                   "--out", str(out)]  # fmt: skip
            print("$ hwlat " + " ".join(cmd[3:]))
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            report(json.loads(out.read_text()), target, time.perf_counter() - t0)


def report(r: dict[str, Any], target: float, wall: float) -> None:
    ms, repair = r["table_ms"], r["repair"]
    print(f"table latency at 224: {ms:.3f} ms ({ms / target - 1:+.2%} of {target}); "
          f"repair {len(repair['changed']) if repair else 0} layers; searched at "
          f"{r['resolution']} ({r['classes']} classes), deployment "
          f"{r['deployment']['resolution']} ({r['deployment']['classes']} classes); "
          f"supernet test acc {r['shared_weights']['test_acc']:.1%}, retrained "
          f"{r['retrain']['test_acc']:.1%}; wall {wall:.0f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search", action="store_true", help="also run the acceptance search")
    ap.add_argument("--target-ms", type=float, default=100.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0", help="comma-separated search seeds")
    args = ap.parse_args()
    formats_table()
    if args.search:
        acceptance_search(args.target_ms, args.epochs, [int(s) for s in args.seeds.split(",")])


if __name__ == "__main__":
    main()
