"""Datasets: three disjoint splits decided by the data seed alone, digits-hard, image
folders, seeded batch orders, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchers._digits_hard import COPIES, digits_hard
from searchers.data import load


def _ids(split: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in split.flatten(1)}


def test_digits_split_three_ways_without_overlap() -> None:
    data = load("digits", 24, batch_size=50, data_seed=0)
    x, _ = next(data.train.batches(50))
    assert x.shape == (50, 3, 24, 24) and data.classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (1257, 269, 271)
    train, val, test = (_ids(s.x) for s in (data.train, data.val, data.test))
    assert not (train & val or train & test or val & test)
    assert abs(float(data.train.x.mean())) < 0.5  # standardised


def test_the_data_seed_alone_moves_the_split() -> None:
    a, b = load("digits", 8, data_seed=0), load("digits", 8, data_seed=1)
    assert torch.equal(load("digits", 8, data_seed=0).test.y, a.test.y)
    assert _ids(a.test.x) != _ids(b.test.x)


def test_batches_follow_their_seed() -> None:
    data = load("digits", 8, batch_size=32, data_seed=0)
    first = [y for _, y in data.train_batches(seed=3, epoch=0)]
    again = [y for _, y in data.train_batches(seed=3, epoch=0)]
    other = [y for _, y in data.train_batches(seed=3, epoch=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert len(first) == data.steps_per_epoch() == 1257 // 32  # the partial batch is dropped


def test_digits_hard_is_fixed_and_harder() -> None:
    x, y = digits_hard()
    assert x.shape == (COPIES * 1797, 3, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.equal(y[:1797], y[1797:3594])  # copies of the same digits
    assert not torch.equal(x[:1797], x[1797:3594])  # warped differently
    x2, _ = digits_hard.__wrapped__()  # made again from nothing: the same pixels
    assert torch.equal(x, x2)
    data = load("digits-hard", 16, data_seed=0)
    assert data.classes == 10 and len(data.train) == int(0.7 * COPIES * 1797)


def test_imagefolder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "eel"):
        (tmp_path / label).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    data = load(f"imagefolder:{tmp_path}", 16, batch_size=4)
    assert data.classes == 3
    assert len(data.train) + len(data.val) + len(data.test) == 18
    x, _ = next(data.train.batches(4))
    assert x.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("mnist", {}, "dataset: one of digits, digits-hard"),
        ("imagefolder:/nonexistent", {}, "is not a folder"),
        ("digits", {"limit": 2}, "too few to split"),
        ("digits", {"batch_size": 0}, "batch-size"),
    ],
)
def test_bad_datasets(spec: str, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(spec, 16, **kwargs)  # type: ignore[arg-type]
