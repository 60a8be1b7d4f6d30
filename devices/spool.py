"""A small local spool of measured-but-not-yet-uploaded results.

A batch is written here before it is uploaded and removed once the service has it, so a
crash or a network outage between measuring and uploading loses nothing: the next run
of the agent uploads what is left (uploads are idempotent per run id, so a batch that
did reach the service before the crash is counted as a duplicate, not stored twice).
The file is rewritten atomically (temporary file + fsync + rename) at every change.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import IO, Any


class Spool:
    @classmethod
    def claim(cls, folder: Path, name: str) -> Spool:
        """The first spool slot `name-N` no running agent holds (an exclusive lock that
        the OS drops when the agent dies, so a restarted agent takes over its slot)."""
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1024):
            lock = open(folder / f"{name}-{n}.lock", "a")  # noqa: SIM115 (held for life)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            spool = cls(folder / f"{name}-{n}.jsonl")
            spool._lock = lock
            return spool
        raise RuntimeError(f"no free spool slot in {folder}")

    def __init__(self, path: Path):
        self.path = path
        self._lock: IO[str] | None = None
        self.entries: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    self.entries.append(json.loads(line))

    def add(
        self,
        lease_id: str,
        run_id: str,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        reference: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        entry = {
            "id": uuid.uuid4().hex,
            "lease_id": lease_id,
            "run_id": run_id,
            "results": results,
            "errors": errors,
            "reference": reference,
        }
        self.entries.append(entry)
        self._save()
        return entry

    def remove(self, entry: dict[str, Any]) -> None:
        self.entries = [e for e in self.entries if e["id"] != entry["id"]]
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in self.entries)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
