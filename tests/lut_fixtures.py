"""Foreign latency tables written for the tests from the formats' descriptions (never
downloaded): the ProxylessNAS mobile table's 72 keys with made-up, plausible numbers
(a Pixel-1-like 4 GMAC/s plus a fixed cost per layer)."""

from __future__ import annotations

import random

from profiler.features import features
from profiler.lutformats import Entry, create_format
from searchers.spaces import SearchSpace, create_space

GMACS = 4.0  # made-up device speed: ms = MACs / (GMACS * 1e6) + PER_LAYER_MS
PER_LAYER_MS = 0.25


def proxyless_mobile_entries(seed: int = 0) -> tuple[SearchSpace, dict[str, Entry]]:
    """proxyless-mobile@224 (width 1.0, 1000 classes) and the 72 entries of the reference
    table: every op's key(s), plus the first block at k5 and k7 (the supernet's table has
    them; hwlat's first block is fixed at k3, so those two map to nothing)."""
    rng = random.Random(seed)
    space = create_space("proxyless-mobile", resolution=224, width=1.0, classes=1000)
    fmt = create_format("proxyless-yaml")
    first = space.fixed_ops()[1]
    ops = [slot.op for slot in space.slots()] + [first.replace(k=5), first.replace(k=7)]
    entries: dict[str, Entry] = {}
    for op in ops:
        keys = fmt.recipe(_slot(op)).keys
        total = features(op).macs / (GMACS * 1e6) + PER_LAYER_MS
        for i, key in enumerate(keys):  # the head's Conv_1 and Logits share its cost
            mean = total * (0.8 if i == 0 else 0.2) if len(keys) > 1 else total
            var = (0.03 * mean) ** 2 * rng.uniform(0.5, 2.0)
            entries[key] = Entry(mean, var**0.5, rng.randint(50, 200), (("spread", "var"),))
    return space, entries


def _slot(op):  # type: ignore[no-untyped-def]
    from profiler.lutformats import Slot

    return Slot("fixture", op, fixed=0 if op.kind == "conv" else None)


def proxyless_mobile_yaml(seed: int = 0) -> str:
    _, entries = proxyless_mobile_entries(seed)
    return create_format("proxyless-yaml").render(entries, "made-up test table")


def synthetic_entries(name: str, space: SearchSpace, seed: int = 0) -> dict[str, Entry]:
    """A made-up table in format `name` for every key its recipes ask of `space`: the
    Pixel-1-like law above, each key a few percent off it (as measurements are), the
    format's own spread fields where it has them."""
    rng = random.Random(seed)
    fmt = create_format(name)
    entries: dict[str, Entry] = {}
    for slot in space.slots():
        keys = fmt.recipe(slot).keys
        total = features(slot.op).macs / (GMACS * 1e6) + PER_LAYER_MS
        for key in keys:
            if key not in entries:
                ms = round(total / len(keys) * rng.uniform(0.97, 1.03), 6)
                spread = fmt.name in ("proxyless-yaml", "ofa-yaml")
                entries[key] = (
                    Entry(ms, 0.02 * ms, 100, (("spread", "var"),)) if spread else Entry(ms)
                )
    return entries
