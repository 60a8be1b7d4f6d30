"""Every registered table format keeps the same promises: what it renders it parses back
(and recognises as its own), the entries of a space's ops map back onto exactly those
ops, and an import followed by an export gives back the same entries."""

from __future__ import annotations

import random

import pytest

from profiler.lutformats import (
    Entry,
    create_format,
    entries_for,
    list_formats,
    map_entries,
    parse_bytes,
    sniff,
)
from searchers.spaces import SearchSpace, create_space, list_spaces


def _space(name: str) -> SearchSpace:
    fmt = create_format(name)
    return create_space(fmt.space or "proxyless-mobile", resolution=224, classes=1000)


def _entries(name: str, space: SearchSpace) -> dict[str, Entry]:
    """Made-up entries for every key the format's recipes ask for."""
    rng = random.Random(0)
    fmt = create_format(name)
    keys = dict.fromkeys(k for slot in space.slots() for k in fmt.recipe(slot).keys)
    return {k: Entry(round(rng.uniform(0.05, 9.0), 4)) for k in keys}


@pytest.mark.parametrize("name", list_formats())
def test_render_parse_round_trip_and_sniff(name: str) -> None:
    fmt, space = create_format(name), _space(name)
    entries = _entries(name, space)
    assert entries, f"{name} maps no op of {space.name}"
    text = fmt.render(entries, "a comment")
    back = fmt.parse(text)
    assert list(back) == list(entries) or set(back) == set(entries)
    for key, e in entries.items():
        assert back[key].ms == pytest.approx(e.ms, rel=1e-12), key
    assert fmt.sniff(text) and sniff(text) is not None and sniff(text).name == name
    assert parse_bytes(text.encode(), "t").fmt.name == name


@pytest.mark.parametrize("name", list_formats())
def test_import_then_export_gives_back_the_same_entries(name: str) -> None:
    fmt, space = create_format(name), _space(name)
    entries = fmt.parse(fmt.render(_entries(name, space)))
    mapped = map_entries(fmt, entries, space.slots())
    assert mapped.unmapped == []
    out, _ = entries_for(fmt, space.slots(), mapped.cells)
    assert out == entries
    filled = {slot.op.key for slot in space.slots() if fmt.recipe(slot).keys}
    assert filled <= set(mapped.cells)


@pytest.mark.parametrize("space_name", list_spaces())
@pytest.mark.parametrize("name", list_formats())
def test_every_format_answers_every_space(name: str, space_name: str) -> None:
    """A recipe for every op of every space: keys, free, or a note saying why not (never
    an exception: the service maps any file onto any space a user names)."""
    fmt, space = create_format(name), create_space(space_name)
    for slot in space.slots():
        r = fmt.recipe(slot)
        assert r.keys or r.free or r.note, (slot.where, name)
    mapped = map_entries(fmt, {}, space.slots())
    assert len(mapped.unfilled) + len(mapped.cells) > 0
