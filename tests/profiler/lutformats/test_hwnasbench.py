"""HW-NAS-Bench's FBNet tables: keys written here from the reference code's grammar
(`fbnet_get_metrics` in hw_nas_bench_api, as /work/scratch/formats.md §5 records it),
not from the format's recipes, so the mapping is checked against an independent copy."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from profiler.lutformats import create_format, entries_for, map_entries, parse_bytes, sniff
from profiler.lutformats.base import Entry
from searchers.latency import LatencyTable
from searchers.spaces import create_space

FMT = create_format("hwnasbench-fbnet")
# (exp, kernel, group) of ops 0..7 (`ConvBlock_list`); op 8 is Skip
CONV_BLOCKS = (
    (1, 3, 1),
    (1, 3, 2),
    (3, 3, 1),
    (6, 3, 1),
    (1, 5, 1),
    (1, 5, 2),
    (3, 5, 1),
    (6, 5, 1),
)
CHANNELS = (16, 24, 32, 64, 112, 184, 352)
REPEATS = (1, 4, 4, 4, 4, 4, 1)
LAYOUTS = {  # H_W, stem stride, stage strides, header, classes
    "cifar100": (32, 1, (1, 1, 2, 2, 1, 2, 1), 1504, 100),
    "ImageNet": (224, 2, (1, 2, 2, 2, 1, 2, 1), 1984, 1000),
}


def reference_keys(dataset: str) -> tuple[str, list[list[str]], list[str]]:
    """(stem key, 22 rows of 9 op keys, head keys) as HW-NAS-Bench looks them up."""
    hw, stride_init, strides, header, classes = LAYOUTS[dataset]
    stem = f"ConvNorm_H{hw}_W{hw}_Cin3_Cout16_kernel3_stride{stride_init}_group1"
    hw //= stride_init
    rows, cin = [], 16
    for cout, n, first in zip(CHANNELS, REPEATS, strides, strict=True):
        for i in range(n):
            s = first if i == 0 else 1
            io = f"H{hw}_W{hw}_Cin{cin}_Cout{cout}"
            row = [f"ConvBlock_{io}_exp{e}_kernel{k}_stride{s}_group{g}" for e, k, g in CONV_BLOCKS]
            rows.append([*row, f"Skip_{io}_stride{s}"])
            hw, cin = hw // s, cout
    head = [
        f"ConvNorm_H{hw}_W{hw}_Cin352_Cout{header}_kernel1_stride1_group1",
        f"AvgP_H{hw}_W{hw}_Cin{header}_Cout{header}_kernel{hw}_stride1",
        f"FC_Cin{header}_Cout{classes}",
    ]
    return stem, rows, head


def all_keys(dataset: str) -> list[str]:
    stem, rows, head = reference_keys(dataset)
    return list(dict.fromkeys([stem, *(k for row in rows for k in row), *head]))


def metric(datasets: tuple[str, ...] = ("cifar100",), seed: int = 0) -> dict[str, float]:
    """One made-up metric of the pickle, e.g. `HW_metrics["fbnet"]["pixel3_latency"]`."""
    rng = random.Random(seed)
    return {k: round(rng.uniform(0.01, 2.0), 6) for d in datasets for k in all_keys(d)}


def write(tmp_path: Path, data: object, name: str = "pixel3_latency.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# --- the key set ------------------------------------------------------------------------
def test_112_unique_keys_per_dataset() -> None:
    assert len(all_keys("cifar100")) == len(all_keys("ImageNet")) == 112
    assert len(metric(("cifar100", "ImageNet"))) == 224


def test_every_op_of_the_space_has_its_reference_key() -> None:
    space = create_space("hwnasbench-fbnet")
    stem, rows, head = reference_keys("cifar100")
    assert FMT.recipe(space.slots()[0]).keys == (stem,)
    assert FMT.recipe(space.slots()[1]).keys == tuple(head)
    for slot in space.slots()[2:]:
        assert slot.layer is not None and slot.candidate is not None
        column = space.candidates.index(slot.candidate)
        assert FMT.recipe(slot).keys == (rows[slot.layer][column],), slot.where


# --- import into a table ----------------------------------------------------------------
def test_a_full_file_fills_the_space_and_sums_like_hw_nas_bench(tmp_path: Path) -> None:
    data = metric()
    table = LatencyTable.from_file(write(tmp_path, data))  # space taken from the format
    assert table.space.params() == {
        "space": "hwnasbench-fbnet",
        "resolution": 32,
        "width": 1.0,
        "classes": 100,
    }
    table.check()
    assert table.meta["format"] == "hwnasbench-fbnet" and table.meta["unmapped_count"] == 0
    stem, rows, head = reference_keys("cifar100")
    rng = random.Random(3)
    for arch in [[0] * 22, [8] * 22, [rng.randrange(9) for _ in range(22)]]:
        keys = [stem, *(row[i] for row, i in zip(rows, arch, strict=True)), *head]
        assert table.exact(arch) == pytest.approx(math.fsum(data[k] for k in keys), rel=1e-12)


def test_a_whole_pickle_metric_maps_its_cifar_half(tmp_path: Path) -> None:
    """A metric of the pickle holds both layouts; the ImageNet half is named as such."""
    table = LatencyTable.from_file(write(tmp_path, metric(("cifar100", "ImageNet"))))
    assert table.space.resolution == 32 and table.space.classes == 100
    table.check()
    assert table.meta["unmapped_count"] == 112
    assert all("ImageNet layout" in line for line in table.meta["unmapped"])


def test_imagenet_keys_fill_nothing_of_the_space() -> None:
    entries = FMT.parse(json.dumps(metric(("ImageNet",))))
    assert FMT.infer(entries) == {"resolution": 224, "classes": 1000}
    space = create_space("hwnasbench-fbnet", resolution=224, classes=1000)
    mapped = map_entries(FMT, entries, space.slots())
    # only the ops whose shapes the two layouts share: none (other strides, other head)
    assert not mapped.cells
    assert len(mapped.unmapped) == 112


def test_a_missing_key_is_reported_by_slot(tmp_path: Path) -> None:
    data = metric()
    gone = reference_keys("cifar100")[1][5][8]  # layer5's skip: the 1x1 stride-2 projection
    assert gone == "Skip_H32_W32_Cin24_Cout32_stride2"
    del data[gone]
    table = LatencyTable.from_file(write(tmp_path, data))
    with pytest.raises(ValueError, match=r"layer5/skip: not in the file: Skip_H32_W32_Cin24"):
        table.check()


def test_an_mbconv_without_the_e1_expansion_cannot_be_expressed() -> None:
    fbnet = create_space("fbnet", resolution=32)
    e1 = next(s for s in fbnet.slots() if s.candidate == "ir_k3_e1")
    recipe = FMT.recipe(e1)
    assert recipe.keys == () and not recipe.free
    assert "keeps its 1x1 expansion at e=1" in recipe.note


# --- the file format --------------------------------------------------------------------
def test_parse_render_round_trip() -> None:
    text = json.dumps(metric())
    entries = FMT.parse(text)
    assert entries[all_keys("cifar100")[0]] == Entry(metric()[all_keys("cifar100")[0]])
    rendered = FMT.render(entries, "a comment JSON cannot hold")
    assert FMT.parse(rendered) == entries
    assert list(json.loads(rendered)) == sorted(entries)
    odd = {"FC_Cin1504_Cout100": Entry(0.1 + 0.2), "Skip_H4_W4_Cin8_Cout8_stride1": Entry(0.0)}
    assert FMT.parse(FMT.render(odd)) == odd  # repr keeps every bit


def test_import_then_export_gives_back_the_same_entries() -> None:
    entries = FMT.parse(json.dumps(metric()))
    space = create_space("hwnasbench-fbnet")
    mapped = map_entries(FMT, entries, space.slots())
    back, notes = entries_for(FMT, space.slots(), mapped.cells)
    assert back == entries and notes == []
    assert FMT.render(back) == FMT.render(entries)


def test_sniff_and_infer() -> None:
    text = json.dumps(metric())
    assert isinstance(sniff(text), type(FMT))
    assert FMT.infer(FMT.parse(text)) == {"resolution": 32, "classes": 100}
    assert FMT.infer(FMT.parse(json.dumps(metric(("cifar100", "ImageNet"))))) == {}
    assert not FMT.sniff('{"format": "hwlat-lut/1", "ConvBlock_H4": 1}')
    assert not FMT.sniff("ConvBlock_H32: 1")
    assert not FMT.sniff('"expanded_conv-input:1x1x1-output:1x1x1": {mean: 1}')


def test_unknown_keys_are_explained() -> None:
    assert "ImageNet layout" in FMT.explain("FC_Cin1984_Cout1000")
    assert "ImageNet layout" in FMT.explain("Skip_H56_W56_Cin24_Cout24_stride1")
    assert "resolution 32" in FMT.explain("Skip_H64_W64_Cin24_Cout24_stride1")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"FC_Cin1504_Cout100": }', r"^not JSON \(Expecting value at line 1\)$"),
        ('{"FC_Cin1504_Cout100": null}', r"^FC_Cin1504_Cout100: latency must be a number"),
        ('{"FC_Cin1504_Cout100": -1.0}', r"^FC_Cin1504_Cout100: latency must be a finite .* >= 0"),
        ('{"FC_Cin1504_Cout100": NaN}', r"^FC_Cin1504_Cout100: latency must be a finite"),
        ('{"FC_Cin1504_Cout100": "fast"}', r"^FC_Cin1504_Cout100: latency must be a number"),
        ('{"FC_Cin1504_Cout100": true}', r"^FC_Cin1504_Cout100: latency must be a number"),
        ('{"FC_Cin1504": 1.0}', r"^'FC_Cin1504': not an HW-NAS-Bench FBNet key"),
        ('{"Conv_H4_W4": 1.0}', r"^'Conv_H4_W4': not an HW-NAS-Bench FBNet key"),
        ('{"FC_Cin1504_Cout100": {"pixel3_latency": 1}}', r"^FC_Cin1504_Cout100: expected a num"),
        ('{"FC_Cin1_Cout2": 1, "FC_Cin1_Cout2": 2}', r"^FC_Cin1_Cout2: given twice"),
        ("[1.0, 2.0]", r"^expected a JSON object of key -> ms .*, got list$"),
        ("{}", r"^expected a JSON object .*, got an empty object$"),
        ("3", r"^expected a JSON object .*, got int$"),
    ],
)
def test_malformed_files_are_one_line_errors(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as info:
        FMT.parse(text)
    assert "\n" not in str(info.value)


def test_garbage_is_refused_through_parse_bytes() -> None:
    garbage = random.Random(0).randbytes(10 << 20)
    with pytest.raises(ValueError) as info:
        parse_bytes(garbage, "huge.json", "hwnasbench-fbnet")
    assert "\n" not in str(info.value) and str(info.value).startswith("huge.json")
    text = b'{"FC_Cin1504_Cout100": 1.0, ' + b"x" * (10 << 20) + b"}"
    with pytest.raises(ValueError, match=r"^huge.json: 10.0 MB is far larger"):
        parse_bytes(text, "huge.json", "hwnasbench-fbnet")
    with pytest.raises(ValueError, match=r"^huge.json: 10.0 MB is far larger"):
        parse_bytes(b"x" * (10 << 20), "huge.json")  # the size first, whatever the format
