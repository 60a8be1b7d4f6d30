"""Datasets: digits at any resolution, image folders, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchers.data import load


def test_digits_are_resized_and_split() -> None:
    data = load("digits", 24, batch_size=50, seed=0)
    x, _ = next(iter(data.train))
    assert x.shape == (50, 3, 24, 24) and data.classes == 10
    assert len(data.train.dataset) + len(data.val.dataset) == 1797  # type: ignore[arg-type]
    assert abs(float(x.mean())) < 0.5  # standardised


def test_imagefolder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "eel"):
        (tmp_path / label).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    data = load(f"imagefolder:{tmp_path}", 16, batch_size=4)
    assert data.classes == 3
    n = len(data.train.dataset) + len(data.val.dataset)  # type: ignore[arg-type]
    assert n == 15
    x, _ = next(iter(data.train))
    assert x.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("mnist", "dataset: 'digits' or"), ("imagefolder:/nonexistent", "is not a folder")],
)
def test_bad_datasets(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(spec, 16)
