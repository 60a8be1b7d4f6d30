"""`hwlat demo`: the main job end to end, as far as it exists today.

1. an overview of the bundled search spaces;
2. a local profile of fbnet at 32x32 on the phone-like `ort-mobile` runtime into a LUT
   file (resumed when it exists, so a second demo is instant);
3. the latency table a searcher will see: layers x candidates, in microseconds.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from devices.runtimes import create_runtime
from hwlat.profile_cmd import print_report, run_with_progress
from profiler.timing import TimingConfig
from searchers.cli import print_overview
from searchers.spaces import SearchSpace, create_space

DEMO_DIR = Path("demo-output")


QUICK = TimingConfig(budget_s=0.02, min_sample_s=0.0005, min_samples_per_round=3, warmup_s=0.002)


def run_demo(
    console: Console, out_dir: Path = DEMO_DIR, runtime: str = "ort-mobile", quick: bool = False
) -> None:
    console.rule("1. search spaces")
    print_overview(console)
    console.rule(f"2. profile fbnet@32 on {runtime} (local, no service)")
    config = QUICK if quick else TimingConfig()
    out = out_dir / f"lut-fbnet32-{runtime}{'-quick' if quick else ''}.json"
    with create_runtime(runtime) as rt:
        space = create_space("fbnet", resolution=32, dtype=rt.precision)
        report = run_with_progress(
            rt, space.fixed_ops() + space.distinct_ops(), config, out, space.params()
        )
    print_report(report, out, as_json=False)
    console.rule("3. the latency table a searcher sees (µs per call, median)")
    print_table(console, space, report.lut["ops"])
    console.print(f"\nThe LUT is in {out}; `hwlat profile --help` for other runtimes/spaces.")


def print_table(console: Console, space: SearchSpace, ops: dict[str, dict[str, float]]) -> None:
    table = Table()
    table.add_column("layer")
    for cand in space.candidates:
        table.add_column(cand.replace("ir_", ""), justify="right")
    for layer in space.layers():
        cells = []
        for choice in layer.choices:
            row = ops.get(choice.op.key) if choice.op else None
            cells.append("—" if row is None else f"{row['median_ms'] * 1e3:.1f}")
        table.add_row(layer.name, *cells)
    fixed = sum(ops[op.key]["median_ms"] for op in space.fixed_ops() if op.key in ops)
    console.print(table)
    console.print(f"fixed ops (stem + head): {fixed * 1e3:.1f} µs; '—' = illegal here")
