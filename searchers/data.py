"""Datasets for a search, split three ways: train (weights), search-validation
(architecture steps and selection) and test (every accuracy reported for a result).

- `digits`: scikit-learn's bundled 8x8 digits (1 797 images), nothing downloaded;
- `digits-hard`: the same digits, four warped copies of each (random affine warp, a
  faint second digit behind it, an occluding patch, pixel noise), made here from a fixed
  seed: 7 188 images on which architectures differ where plain digits saturates;
- `imagefolder:PATH`: one subfolder of images per class.

Images are resized to the space's input resolution and standardised per channel. The
split depends on `data_seed` only, never on the search's `--seed`, so two searches with
different seeds see the same test images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from searchers._digits_hard import digits_hard

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SPLIT = (0.7, 0.15, 0.15)  # train / search-validation / test
DATASETS = ("digits", "digits-hard", "imagefolder:PATH")
# the size a data set is searched at when only the table's size is given (`hwlat search
# --table-resolution`): digits are 8x8, upsampled to the smallest size every space takes
NATIVE_RESOLUTION = {"digits": 32, "digits-hard": 32}


@dataclass
class Split:
    x: torch.Tensor  # (N, 3, R, R)
    y: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return len(self.y)

    def batches(
        self, batch_size: int, shuffle_seed: int | None = None, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in a seeded order (`shuffle_seed`), or in storage order (None). The order
        is a pure function of the seed, so a resumed search can skip to any step."""
        n = len(self.y)
        if shuffle_seed is None:
            order = torch.arange(n)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield self.x[idx], self.y[idx]

    def n_batches(self, batch_size: int, drop_last: bool = False) -> int:
        n = len(self.y)
        return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    classes: int
    name: str
    batch_size: int
    data_seed: int

    def train_batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches; the last partial batch is dropped (a batch of one
        cannot be normalised by batch statistics)."""
        return self.train.batches(self.batch_size, epoch_seed(seed, epoch), drop_last=True)

    def steps_per_epoch(self) -> int:
        return self.train.n_batches(self.batch_size, drop_last=True)


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A distinct, reproducible shuffle seed per (seed, epoch, stream)."""
    return (seed * 1_000_003 + epoch * 7_919 + stream * 104_729) % (2**63)


def load(
    spec: str,
    resolution: int,
    batch_size: int = 64,
    data_seed: int = 0,
    limit: int | None = None,
    split: tuple[float, float, float] = SPLIT,
) -> Data:
    """The dataset resized to `resolution`, the first `limit` images of a shuffle seeded
    by `data_seed`, split train / validation / test."""
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch-size: must be a positive integer, got {batch_size!r}")
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-6:
        raise ValueError(f"split: three positive fractions that sum to 1, got {split}")
    x, y = _images(spec)
    # (N, 3, h, w) in [0, 1] -> (N, 3, R, R), standardised per channel
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / (x.std(dim=(0, 2, 3), keepdim=True) + 1e-6)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(data_seed))[:limit]
    n_train = int(split[0] * len(order))
    n_val = int(split[1] * len(order))
    if min(n_train, n_val, len(order) - n_train - n_val) < 1:
        raise ValueError(f"dataset: {len(order)} images are too few to split three ways")
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    train, val, test = (Split(x[p], y[p]) for p in parts)
    return Data(train, val, test, int(y.max()) + 1, spec, batch_size, data_seed)


def _images(spec: str) -> tuple[torch.Tensor, torch.Tensor]:
    if spec == "digits":
        return _digits()
    if spec == "digits-hard":
        return digits_hard()
    if spec.startswith("imagefolder:"):
        return _imagefolder(Path(spec.split(":", 1)[1]))
    raise ValueError(f"dataset: one of {', '.join(DATASETS)}, got {spec!r}")


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32) / 16.0  # (N, 8, 8), values 0..16
    return x[:, None].expand(-1, 3, -1, -1).contiguous(), torch.tensor(d.target)


def _imagefolder(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    if not root.is_dir():
        raise ValueError(f"dataset: {root} is not a folder (expected one subfolder per class)")
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"dataset: {root} needs at least 2 class subfolders")
    images, labels = [], []
    for label, folder in enumerate(classes):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((64, 64))
            images.append(np.asarray(rgb, dtype=np.float32) / 255.0)
            labels.append(label)
    if len(images) < 10:
        raise ValueError(f"dataset: {root} has {len(images)} images; need at least 10")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    return x.contiguous(), torch.tensor(labels)
