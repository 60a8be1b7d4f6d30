"""`hwlat search NAME`: a hardware-aware search against a device's latency table.

The table comes from the service (one call, `--device`) or from a LUT file (`--lut`:
`hwlat profile`/`hwlat lut` output or a ProxylessNAS yaml). Each algorithm's options are
its typed config (`--set key=value`, listed by `--help-options`); the common ones have
flags of their own. After the search the exported architecture is trained from scratch
and measured end to end — here, when the table is a local LUT measured on this machine,
or by the device's agents as a network work item — and its table latency, the service's
calibrated estimate and the measurement are printed side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Server, Token, fail
from hwlat.commands.connect import client
from hwlat.commands.search_target import (
    file_classes,
    imported,
    latency_check,
    load_table,
    make_latency,
    reachable,
    table_target,
    table_window,
)
from hwlat.commands.spaces import make_space
from hwlat.end_to_end import measure_here, measure_on_device
from hwlat.pareto import print_front, write_front
from hwlat.search_finalists import NoFinalists, train_with
from hwlat.search_finalists import retrain_top as retrain_finalists
from hwlat.search_launch import alone_after_search, join_or_launch
from hwlat.search_measure import measure_option
from hwlat.search_report import export, print_summary, run_with_progress
from searchers import data as datasets
from searchers.core.checkpoint import Checkpoint
from searchers.core.config import SearchConfig, apply_sets, describe
from searchers.core.loop import Searcher
from searchers.core.losses import LOSSES, HardTarget
from searchers.registry import create_searcher, list_searchers, searcher_class
from searchers.retrain import DEFAULT_LR, retrain
from searchers.spaces import SearchSpace, list_spaces, space_class
from searchers.spaces._chain import ChainSpace

Opt = typer.Option


def search(
    searcher: Annotated[
        str,
        typer.Argument(
            help="proxyless, proxyless-rl, fbnet, singlepath, spos, fairnas, oneshot, smash, "
            "enas (chain spaces), darts, gdas, pcdarts, pdarts, enas-cell (darts) or "
            "densenas (densenas); `hwlat search NAME --help-options` lists its options"
        ),
    ],
    space_name: Annotated[
        str | None, Opt("--space", help="Default: the one space NAME takes, else proxyless-mobile.")
    ] = None,
    resolution: Annotated[int | None, Opt("--resolution", "-r")] = None,
    width: Annotated[float, Opt("--width", "-w")] = 1.0,
    space_opts: Annotated[
        list[str] | None,
        Opt("--option", "-o", help="Space parameter NAME=VALUE (darts: C, cells)."),
    ] = None,
    device: Annotated[str | None, Opt("--device", help="Table from the service.")] = None,
    lut: Annotated[Path | None, Opt("--lut", help="Table from a LUT file.")] = None,
    lut_format: Annotated[
        str | None,
        Opt("--lut-format", help="The --lut file's format when its content does not say."),
    ] = None,
    table_resolution: Annotated[
        int | None,
        Opt(
            "--table-resolution",
            help="Latency of the space at this resolution (the table's deployment "
            "configuration) while the supernet trains at -r (default: the dataset's own "
            "size, digits 32).",
        ),
    ] = None,
    table_classes: Annotated[
        int | None,
        Opt("--table-classes", help="With --table-resolution: the table's class count."),
    ] = None,
    target_ms: Annotated[float | None, Opt("--target-ms")] = None,
    max_ms: Annotated[
        float | None,
        Opt("--max-ms", help="A constraint instead of a target: at most T ms."),
    ] = None,
    min_ms: Annotated[float | None, Opt("--min-ms", help="With --max-ms: at least L ms.")] = None,
    table_constraint: Annotated[
        bool,
        Opt(
            "--table-constraint",
            help="--max-ms/--min-ms on the table sum even when the device has a calibration.",
        ),
    ] = False,
    tolerance: Annotated[float, Opt("--tolerance")] = 0.03,
    constraint: Annotated[str, Opt("--constraint", help="eq or le")] = "eq",
    soft: Annotated[
        bool, Opt("--soft", help="A fixed latency weight (--loss), no repair.")
    ] = False,
    calibrated: Annotated[
        bool,
        Opt(
            "--calibrated-target",
            help="--target-ms is end to end: map it through the device's calibration.",
        ),
    ] = False,
    loss: Annotated[str | None, Opt("--loss", help=" | ".join(LOSSES) + " (with --soft)")] = None,
    dataset: Annotated[str, Opt("--dataset", help=" | ".join(datasets.DATASETS))] = "digits",
    data_seed: Annotated[int, Opt("--data-seed", help="The train/val/test split.")] = 0,
    data_limit: Annotated[
        int | None, Opt("--data-limit", min=10, help="Only the first N images (quick tries).")
    ] = None,
    batch_size: Annotated[int, Opt("--batch-size", min=1)] = 64,
    epochs: Annotated[int | None, Opt("--epochs", min=1)] = None,
    warmup_epochs: Annotated[int | None, Opt("--warmup-epochs", min=0)] = None,
    arch_every: Annotated[int | None, Opt("--arch-every", min=1)] = None,
    arch_lr: Annotated[float | None, Opt("--arch-lr")] = None,
    lr: Annotated[float | None, Opt("--lr")] = None,
    seed: Annotated[int | None, Opt("--seed", help="Init, paths, data order.")] = None,
    sets: Annotated[list[str] | None, Opt("--set", help="Any option KEY=VALUE.")] = None,
    help_options: Annotated[bool, Opt("--help-options", help="List NAME's options.")] = False,
    allow_predicted: Annotated[bool, Opt("--allow-predicted")] = False,
    retrain_epochs: Annotated[int, Opt("--retrain-epochs", min=0)] = 8,
    retrain_lr: Annotated[float, Opt("--retrain-lr")] = DEFAULT_LR,
    retrain_top: Annotated[
        int,
        Opt(
            "--retrain-top",
            min=1,
            help="Train the K best-scored candidates and export the best by validation "
            "accuracy (One-Shot, SMASH; searchers that score many).",
        ),
    ] = 1,
    checkpoint: Annotated[Path | None, Opt("--checkpoint", help="Save the search here.")] = None,
    resume: Annotated[bool, Opt("--resume", help="Continue from --checkpoint.")] = False,
    torch_device: Annotated[str, Opt("--torch-device", help="auto, cpu or cuda")] = "auto",
    nproc: Annotated[
        int,
        Opt(
            "--nproc",
            min=1,
            help="Search on N processes, the batch split over them (torchrun: its count).",
        ),
    ] = 1,
    verify: Annotated[bool, Opt("--verify/--no-verify")] = True,
    runtime: Annotated[str | None, Opt("--runtime", help="With --lut.")] = None,
    out: Annotated[
        Path,
        Opt("--out", help="FILE.json, or a directory (arch.json and the drawings inside)."),
    ] = Path("arch.json"),
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    token: Token = None,
) -> None:
    """Search an architecture that meets a latency target on a device."""
    args = dict(locals())  # the command as given, for the ranks `--nproc` starts
    if searcher not in list_searchers():
        fail(f"searcher: one of {', '.join(list_searchers())}, got {searcher!r}")
    cls = searcher_class(searcher)
    space_name = space_name or default_space(cls)
    if help_options:
        print_options(Console(), searcher, cls.Config)
        return
    flags = {"epochs": epochs, "warmup_epochs": warmup_epochs, "arch_every": arch_every,
             "arch_lr": arch_lr, "lr": lr, "seed": seed}  # fmt: skip
    if epochs is not None and warmup_epochs is None:
        flags["warmup_epochs"] = _warmup_share(cls.Config, epochs, sets or [])
    config = apply_sets(cls.Config, sets or [], {k: v for k, v in flags.items() if v is not None})
    if (device is None) == (lut is None):
        fail("give the table with either --device NAME (service) or --lut FILE")
    if calibrated and device is None:
        fail("--calibrated-target needs --device (the calibration lives in the service)")
    if retrain_top > 1 and retrain_epochs < 1:
        fail("--retrain-top: needs --retrain-epochs >= 1 (the finalists are chosen by training)")
    if retrain_top > 1 and not issubclass(space_class(space_name), ChainSpace):
        fail(f"--retrain-top: {space_name} is not a chain space; its searchers export one "
             "architecture (drop --retrain-top)")  # fmt: skip
    if resume and checkpoint is None:
        fail("--resume needs --checkpoint DIR (where the search was saved)")
    if resume and checkpoint is not None and not Checkpoint(checkpoint).exists():
        fail(f"--resume: no checkpoint in {checkpoint} (start without --resume)")
    latency_check(target_ms, soft, loss, max_ms, min_ms)
    if table_resolution is not None and resolution is None:  # train at the data's own size
        resolution = datasets.NATIVE_RESOLUTION.get(dataset)
        if resolution is None:
            fail(f"--table-resolution: pass -r R too (the size to train {dataset} at)")
    run_on = _torch_device(torch_device)
    ranks = join_or_launch(search, args, nproc, batch_size, run_on)
    if ranks is None:  # the N processes started here ran the search
        return
    run_on = ranks.device(run_on)
    space = make_space(space_name, resolution, width, None, space_opts)
    cls.check_space(space)
    data = datasets.load(dataset, space.resolution, batch_size, data_seed, data_limit)
    space = make_space(space_name, resolution, width, data.classes, space_opts)
    deploy = None
    if table_resolution is not None or table_classes is not None:
        deploy = make_space(space_name, table_resolution or space.resolution, width,
                            table_classes or file_classes(lut, lut_format), space_opts)  # fmt: skip
    console = Console(stderr=True, quiet=ranks.rank > 0)  # rank 0 speaks for all
    with client(server, admin_token, token) as c:
        table = load_table(space, deploy, c, device, lut, lut_format)
        cls.usable_table(table).check(allow_predicted)  # the cells the searcher reads
        mapped = None
        on = deploy or space  # the calibration is the deployment configuration's
        if calibrated and target_ms is not None:
            target_ms, mapped = table_target(c, device, on, target_ms)  # type: ignore[arg-type]
        window = None
        if max_ms is not None:
            window, mapped = table_window(c, device, on, (min_ms, max_ms), table_constraint)
        latency = make_latency(target_ms, tolerance, constraint, soft, loss, window)
        if isinstance(latency, HardTarget):
            reachable(cls.table_bounds(table), latency)
        measure = measure_option(cls, config, c, device, on, table, lut, runtime)
        s = create_searcher(searcher, table=table, data=data, config=config, latency=latency,
                            device=run_on, **measure)  # fmt: skip
        saved = Checkpoint(checkpoint) if checkpoint else None
        if saved is not None and resume:
            s.resume(saved)
            console.print(f"resumed from {saved.path} at epoch {s.epoch + 1}, step {s.step}")
        result = run_with_progress(s, console, saved)
        if not alone_after_search(s, ranks):  # N ranks: rank 0 goes on alone
            return
        trained = None
        if retrain_top > 1:
            train = train_with(s, retrain_epochs, retrain_lr, config.seed, run_on)
            with console.status(f"training the top {retrain_top} from scratch...") as st:

                def done(i: int, n: int) -> None:
                    st.update(f"trained {i} of {n} finalists from scratch...")

                try:
                    result, trained = retrain_finalists(s, result, retrain_top, train, done)
                except NoFinalists as e:  # the search is done: keep it, retrain it alone
                    console.print(f"[yellow]{e}; retraining the result alone[/]")
        record = export(s, result, table, latency, c if device else None, device)
        record["target"]["end_to_end" if max_ms is None else "window"] = mapped
        if trained is None:
            with console.status(f"training the result from scratch ({retrain_epochs} epochs)..."):
                trained = retrain(space, record["arch"], data, retrain_epochs, retrain_lr,
                                  config.seed, run_on)  # fmt: skip
        record["retrain"] = trained.to_json()
        elsewhere = imported(table)
        if verify and elsewhere:
            why = f"the table came from {elsewhere} measured elsewhere: nothing here measures it"
            record["measured"] = {"skipped": why}
        elif verify:
            arch = record.get("deployment", {}).get("arch", record["arch"])
            record["measured"] = (
                measure_on_device(c, device, on, arch)
                if device
                else measure_here(lut, runtime, on, arch)  # type: ignore[arg-type]
            )
    write_outputs(s, record, out)


def write_outputs(s: Searcher, record: dict[str, Any], out: Path) -> None:
    """arch.json, and beside it the genotype drawing (cell spaces) and the Pareto front
    (JSON and PNG) of searchers that score many candidates; then the summary."""
    if out.suffix != ".json":
        out = out / "arch.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    drawing, front = write_drawing(s.space, record, out), write_front(s, record, out)
    out.write_text(json.dumps(record, indent=1))
    print_summary(Console(), record)
    if front is not None:
        print_front(Console(), record)
    Console().print(
        f"architecture written to {out}"
        + (f", its cells drawn in {drawing}" if drawing else "")
        + (f", the Pareto front in {front} (and .json)" if front else "")
    )


def default_space(cls: type[Searcher]) -> str:
    """The space a searcher searches when `--space` is not given: the only one it takes
    (darts for the DARTS family, densenas for DenseNAS), else proxyless-mobile."""
    fits = [n for n in list_spaces() if issubclass(space_class(n), cls.space_kind)]
    return fits[0] if len(fits) == 1 else "proxyless-mobile"


def _warmup_share(config: type[SearchConfig], epochs: int, sets: list[str]) -> int | None:
    """A shorter `--epochs` than the default warm-up keeps the default's share of warm-up
    (ProxylessNAS: 5 of 15 → 1 of 3), rather than refusing the run."""
    default = config()
    warmup = getattr(default, "warmup_epochs", None)
    if warmup is None or warmup < epochs or any(s.startswith("warmup_epochs=") for s in sets):
        return None
    return epochs * warmup // max(default.epochs, 1)


def print_options(console: Console, name: str, config: type[SearchConfig]) -> None:
    t = Table(title=f"hwlat search {name}: --set KEY=VALUE")
    for col in ("option", "type", "default", "what", "from"):
        t.add_column(col)
    for row in describe(config):
        t.add_row(row["name"], row["type"], row["default"], row["help"], row["paper"])
    console.print(t)


def _torch_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        fail(f"--torch-device: auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        fail("--torch-device cuda: this torch has no CUDA device (use cpu, or a CUDA build)")
    return name


def write_drawing(space: SearchSpace, record: dict[str, Any], out: Path) -> Path | None:
    """A cell space's genotype drawn next to the record (`arch.json` -> `arch.cells.svg`)."""
    if space.name != "darts":
        return None
    from searchers.spaces.darts_draw import genotype_svg

    path = out.with_name(out.stem + ".cells.svg")
    path.write_text(genotype_svg(record["arch"]))
    record["drawing"] = path.name
    return path
