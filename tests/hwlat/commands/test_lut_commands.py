"""`hwlat lut import`, export in the foreign formats, `hwlat lut compare` and `hwlat
estimate` against a real `hwlat serve` process."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwlat.commands.search_target import imported
from latency_service.client import HwlatClient
from profiler.lutformats import Entry, create_format
from searchers.latency import LatencyTable
from tests.hwlat.commands.test_service_commands import cli, start_server
from tests.lut_fixtures import proxyless_mobile_entries, proxyless_mobile_yaml

SPACE = ("--space", "proxyless-mobile", "-r", "224", "--classes", "1000")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("xdg")
    proc, url = start_server(data)
    yield url, data
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def run(server, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    url, data = server
    return lambda *a: cli(capsys, monkeypatch, data, *a, "--server", url)


def _slower(entries: dict[str, Entry], factor: float) -> dict[str, Entry]:
    return {k: Entry(e.ms * factor, e.std_ms, e.count, e.extra) for k, e in entries.items()}


def test_import_export_estimate_and_compare(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = tmp_path / "mobile_trim.yaml"
    table.write_text(proxyless_mobile_yaml())
    code, out, err = run("lut", "import", str(table), "--device", "pixel1")
    assert code == 0, err
    assert "created device pixel1 from mobile_trim.yaml (proxyless-yaml" in out
    assert "2 entries that map to no op" in out and "kernel:7" in out
    code, out, _ = run("lut", "import", str(table), "--device", "pixel1")
    assert code == 0 and "already device pixel1's table" in out and "nothing changed" in out
    code, out, _ = run("devices", "show", "pixel1")
    assert code == 0 and "imported from" in out
    code, out, _ = run("devices", "show", "pixel1", "--json")
    [origin] = json.loads(out)["provenance"]
    assert origin["file_name"] == "mobile_trim.yaml" and origin["format"] == "proxyless-yaml"

    exported = tmp_path / "back.yaml"
    code, out, err = run("lut", "--device", "pixel1", *SPACE, "--format", "proxyless-yaml",
                         "--out", str(exported))  # fmt: skip
    assert code == 0, err
    fmt = create_format("proxyless-yaml")
    _, entries = proxyless_mobile_entries()
    back = fmt.parse(exported.read_text())
    assert back == entries  # the whole file, its unmapped k5/k7 first blocks included
    assert "2 entries of mobile_trim.yaml map to no op" in exported.read_text()

    space, _ = proxyless_mobile_entries()
    arch = tmp_path / "arch.json"
    choices = list(space.random_arch(7))
    arch.write_text(json.dumps({**space.params(), "choices": choices}))
    keys = [k for op in space.arch_ops(choices) for k in _recipe_keys(fmt, op, space)]
    want = math.fsum(entries[k].ms for k in keys)
    for source in (("--device", "pixel1"), ("--lut", str(table))):
        code, out, err = run("estimate", *source, "--arch", str(arch), "--json")
        assert code == 0, err
        assert json.loads(out)["table_ms"] == pytest.approx(want, abs=1e-9)

    slower = tmp_path / "slower.yaml"
    slower.write_text(fmt.render(_slower(entries, 1.5)))
    code, _, err = run("lut", "import", str(slower), "--device", "pixel1-slow")
    assert code == 0, err
    png = tmp_path / "cmp.png"
    code, out, err = run("lut", "compare", "--device", "pixel1", "--device", "pixel1-slow",
                         *SPACE, "--png", str(png), "--archs", "200", "--json")  # fmt: skip
    assert code == 0, err
    r = json.loads(out)
    assert r["ratio"]["median"] == pytest.approx(1.5) and r["spearman"] == pytest.approx(1.0)
    assert r["archs"]["spearman"] == pytest.approx(1.0) and png.stat().st_size > 10_000
    assert r["left_out"]["0 ms in one"] == 15  # the zero cells: free by the format's rule


def _recipe_keys(fmt, op, space):  # type: ignore[no-untyped-def]
    from profiler.lutformats import Slot

    return fmt.recipe(Slot("arch", op, fixed=0 if op == space.fixed_ops()[0] else None)).keys


def test_an_imported_device_is_not_measured_by_agents(  # type: ignore[no-untyped-def]
    run, server, tmp_path: Path
) -> None:
    table = tmp_path / "t.yaml"
    table.write_text(proxyless_mobile_yaml(seed=3))
    assert run("lut", "import", str(table), "--device", "pixel1-b")[0] == 0
    space, _ = proxyless_mobile_entries()
    with HwlatClient(server[0]) as c:  # what `hwlat search --device` reads: no verify then
        searched = LatencyTable.from_service(c, "pixel1-b", space)
    assert imported(searched) == "files (t.yaml (proxyless-yaml))"
    code, _, err = run("jobs", "add", "--device", "pixel1-b", "--space", "fbnet", "-r", "32")
    assert code == 1 and err.startswith("error: HTTP 409") and "t.yaml" in err


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("\udcff\udcfe" * 100, (), "not a text file"),
        ("hello: [1, 2", (), "cannot tell its format from its content"),
        (
            '"Conv-input:224x224x3-output:112x112x32":\n  mean: .nan\n',
            (),
            "mean must be a finite number >= 0 ms",
        ),
        (
            '"Conv-input:224x224x3-output:112x112x32":\n  mean: 1\n  speed: 2\n',
            (),
            "unknown field 'speed'",
        ),
        ("x" * (9 << 20), ("--format", "proxyless-yaml"), "far larger than any latency table"),
        ('{"a": 1}', ("--format", "ofa-yaml"), "not a ofa-yaml key"),
    ],
)
def test_bad_files_are_one_line_and_nothing_is_written(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, content: str, argv: tuple[str, ...], message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content.encode("utf-8", "surrogateescape"))
    code, _, err = run("lut", "import", str(bad), "--device", "broken", "--space",
                       "proxyless-mobile", "-r", "224", *argv)  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and message in err, err
    code, _, err = run("devices", "show", "broken")
    assert code == 1 and "no device 'broken'" in err


def test_compare_needs_two_devices(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("lut", "compare", "--device", "a", *SPACE)
    assert code == 1 and "give exactly two" in err


def test_search_at_the_datas_size_against_a_deployment_table(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--table-resolution 224` without -r: the supernet trains at digits' 32 with 10
    classes, the latency is the 224 table's (1 000 classes, read from the file), and the
    record keeps both; a table measured elsewhere is not measured here."""
    table = tmp_path / "mobile_trim.yaml"
    table.write_text(proxyless_mobile_yaml())
    out = tmp_path / "arch.json"
    argv = ["search", "proxyless", "--lut", str(table), "--table-resolution", "224",
            "--target-ms", "100", "--dataset", "digits", "--epochs", "1", "--data-limit", "120",
            "--retrain-epochs", "0", "--out", str(out)]  # fmt: skip
    code, _, err = run(*argv)
    assert code == 0, err
    r = json.loads(out.read_text())
    assert (r["resolution"], r["classes"]) == (32, 10)
    assert (r["deployment"]["resolution"], r["deployment"]["classes"]) == (224, 1000)
    assert r["deployment"]["arch"]["choices"] == r["arch"]["choices"]
    lo, hi = LatencyTable.from_file(table).bounds()
    assert lo <= r["table_ms"] <= hi and "skipped" in r["measured"]
    code, est, err = run("estimate", "--lut", str(table), "--arch", str(out), "--json")
    assert code == 0 and json.loads(est)["table_ms"] == pytest.approx(r["table_ms"]), err
