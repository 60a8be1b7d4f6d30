"""Datasets for a search: `digits` (scikit-learn's bundled 8x8 digits, nothing downloaded)
or `imagefolder:PATH` (one subfolder of images per class), resized to the space's input
resolution, split into a train part (weights) and a validation part (architecture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


@dataclass
class Data:
    train: DataLoader[tuple[torch.Tensor, ...]]
    val: DataLoader[tuple[torch.Tensor, ...]]
    classes: int
    name: str


def load(
    spec: str, resolution: int, batch_size: int = 64, seed: int = 0, limit: int | None = None
) -> Data:
    """`digits` or `imagefolder:PATH` (the first `limit` images of a seeded shuffle);
    80% train / 20% validation."""
    if spec == "digits":
        x, y = _digits()
    elif spec.startswith("imagefolder:"):
        x, y = _imagefolder(Path(spec.split(":", 1)[1]))
    else:
        raise ValueError(f"dataset: 'digits' or 'imagefolder:PATH', got {spec!r}")
    # (N, 3, h, w) in [0, 1] -> (N, 3, R, R), standardised per channel
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / (x.std(dim=(0, 2, 3), keepdim=True) + 1e-6)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:limit]
    cut = int(0.8 * len(order))
    tr, va = order[:cut], order[cut:]
    gen = torch.Generator().manual_seed(seed + 1)
    return Data(
        DataLoader(TensorDataset(x[tr], y[tr]), batch_size, shuffle=True, generator=gen),
        DataLoader(TensorDataset(x[va], y[va]), batch_size, shuffle=True, generator=gen),
        int(y.max()) + 1,
        spec,
    )


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
