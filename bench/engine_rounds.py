"""How many rounds the timing engine may take: fbnet@32 on ort-cpu (one thread) with
each round limit in turn, in one run, the engine alone (no reference panel). Prints per
limit: wall time, ops short of the CI target, median relative CI, rounds, budgets spent.

    taskset -c 0 .venv/bin/python bench/engine_rounds.py 12 30 12 30
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.profiling import profile_ops  # noqa: E402
from devices.runtimes import create_runtime  # noqa: E402
from profiler.timing import TimingConfig  # noqa: E402
from searchers.spaces import create_space  # noqa: E402


def main(limits: list[int]) -> None:
    space = create_space("fbnet", resolution=32)
    ops = space.fixed_ops() + space.distinct_ops()
    print(f"command: bench/engine_rounds.py {' '.join(map(str, limits))}")
    for limit in limits:
        config = TimingConfig(max_rounds=limit)
        with create_runtime("ort-cpu", threads=1) as rt:
            t0 = time.perf_counter()
            report = profile_ops(rt, ops, config, drift=None)
            wall = time.perf_counter() - t0
        rows = list(report.lut["ops"].values())
        print(
            f"max_rounds {limit}: wall {wall:.0f} s, short of the target "
            f"{sum(not r['target_met'] for r in rows)}/{len(rows)}, unstable "
            f"{sum(not r['stable'] for r in rows)}, median rel CI "
            f"{statistics.median(r['rel_ci'] for r in rows):.2%}, rounds median "
            f"{statistics.median(r['rounds'] for r in rows)} max {max(r['rounds'] for r in rows)}, "
            f"budget exhausted {sum(r['budget_exhausted'] for r in rows)}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [12, 30])
