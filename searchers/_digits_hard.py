"""`digits-hard`: scikit-learn's digits made hard enough that architectures differ.

Plain digits saturates after a few epochs, whatever the architecture, so a
search cannot be told apart from a random pick on it. Each of the 1 797 digits gives
`COPIES` images on a 32x32 canvas, every one drawn from a fixed seed (the data set is
the same in every process and on every machine with this torch):

- a random affine warp: rotation ±20°, scale 0.85–1.1, shear ±0.15, shift ±8% of the side;
- a second, different digit behind it at 20–40% intensity, warped and shifted on its
  own (a distractor the network must learn to ignore);
- with probability 0.4, an occluding rectangle of 15–30% of the side, filled with a
  random grey level;
- Gaussian pixel noise, σ = 0.15, then clipped to [0, 1].

Its strength is chosen so that random architectures of one latency spread out after a
short retraining, below plain digits' near-ceiling, while a stronger version left most
architectures near chance; the figures are in docs/BENCHMARKS.md, "Search vs random"
(`bench/search_vs_random.py`).

Nothing is downloaded; the whole set is made in memory, once, and kept for the process.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

COPIES = 4
CANVAS = 32
SEED = 20261204
ROTATE = math.pi / 9  # ±20°
SCALE = (0.85, 1.1)
SHEAR = 0.15
SHIFT = 0.08  # of the side
DISTRACTOR = (0.2, 0.4)  # intensity of the digit behind
OCCLUDE = (0.4, 0.15, 0.3)  # probability, side range
NOISE = 0.15


@lru_cache(maxsize=1)
def digits_hard() -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 32, 32) images in [0, 1] and their labels, N = 4 x 1 797."""
    from sklearn.datasets import load_digits

    d = load_digits()
    base = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    base = F.interpolate(base, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False)
    labels = torch.tensor(d.target)
    gen = torch.Generator().manual_seed(SEED)
    n = len(labels)
    images = []
    for _ in range(COPIES):
        digit = _warp(base, gen, shift=SHIFT)
        other = _distractors(labels, gen)
        behind = _warp(base[other], gen, shift=0.35)
        lo, hi = DISTRACTOR
        strength = lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=gen)
        img = torch.maximum(digit, strength * behind)
        img = _occlude(img, gen)
        img = img + NOISE * torch.randn(img.shape, generator=gen)
        images.append(img.clamp(0.0, 1.0))
    x = torch.cat(images).expand(-1, 3, -1, -1).contiguous()  # grey -> 3 channels
    return x, labels.repeat(COPIES)


def _warp(img: torch.Tensor, gen: torch.Generator, shift: float) -> torch.Tensor:
    """A random affine warp per image (rotation, scale, shear, shift)."""
    n = len(img)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    angle = uniform(-ROTATE, ROTATE)
    scale = uniform(*SCALE)
    shear = uniform(-SHEAR, SHEAR)
    tx, ty = uniform(-2 * shift, 2 * shift), uniform(-2 * shift, 2 * shift)  # grid is [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear * cos, tx], dim=1),
            torch.stack([sin, cos + shear * sin, ty], dim=1),
        ],
        dim=1,
    )  # (N, 2, 3): output -> input sampling coordinates
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, align_corners=False, padding_mode="zeros")


def _distractors(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """For each image, the index of a random image of another class."""
    n = len(labels)
    pick = torch.randint(n, (n,), generator=gen)
    same = labels[pick] == labels
    while bool(same.any()):
        pick[same] = torch.randint(n, (int(same.sum()),), generator=gen)
        same = labels[pick] == labels
    return pick


def _occlude(img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """With probability OCCLUDE[0], a grey rectangle of OCCLUDE[1]-OCCLUDE[2] of the side at a
    random place."""
    n, _, h, w = img.shape
    out = img.clone()
    p, lo, hi = OCCLUDE
    hit = torch.rand(n, generator=gen) < p
    sides = (torch.rand(n, 2, generator=gen) * (hi - lo) + lo) * h
    corners = torch.rand(n, 2, generator=gen)
    grey = torch.rand(n, generator=gen)
    for i in torch.nonzero(hit).flatten().tolist():
        ph, pw = int(sides[i, 0]), int(sides[i, 1])
        top, left = int(corners[i, 0] * (h - ph)), int(corners[i, 1] * (w - pw))
        out[i, :, top : top + ph, left : left + pw] = grey[i]
    return out
