"""Checkpoint and resume a search (`hwlat search ... --checkpoint DIR [--resume]`).

A checkpoint is everything the loop needs to continue as if it had never stopped: the
supernet and architecture parameters, both optimisers and the schedule, the sampling
generator, the latency controller, the position (epoch, step within it, architecture
steps taken) and the history so far. Training batches are a pure function of (seed,
epoch) and validation batches of (seed, epoch, index), so a resumed search sees the
same batches from the step it stopped at, and ends with the same architecture as an
uninterrupted run with the same seed.

It is written with `torch.save` to a temporary file, fsynced and renamed, so a search
killed while writing leaves the previous checkpoint whole. It is loaded with
`weights_only=True` (tensors and plain containers only, no pickled code). A checkpoint
names the run it belongs to (searcher, config, table, data); resuming another run is
refused, naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

FILE = "search.pt"
FORMAT = "hwlat-search-checkpoint/1"


def run_key(parts: dict[str, Any]) -> dict[str, str]:
    """A short digest per part of what makes a run (compared on resume)."""
    return {
        name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        for name, value in parts.items()
    }


class Checkpoint:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.path = self.dir / FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self, key: dict[str, str]) -> dict[str, Any]:
        if not self.exists():
            raise ValueError(f"--resume: no checkpoint in {self.dir} (start without --resume)")
        try:
            state = torch.load(self.path, weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which and what to do
            raise ValueError(
                f"--resume: {self.path} is not a readable checkpoint ({type(exc).__name__}); "
                "delete it to start over"
            ) from None
        if state.get("format") != FORMAT:
            raise ValueError(f"--resume: {self.path} is not a {FORMAT} file")
        theirs = state.get("key", {})
        differ = sorted(k for k in set(key) | set(theirs) if key.get(k) != theirs.get(k))
        if differ:
            raise ValueError(
                f"--resume: the checkpoint in {self.dir} is of another search (its "
                f"{', '.join(differ)} differ); use another --checkpoint folder or the same "
                "arguments"
            )
        return state
