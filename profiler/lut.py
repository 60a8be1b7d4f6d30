"""LUT files: what `hwlat profile` writes and searchers read. JSON, written atomically.

{"format": "hwlat-lut/1", "fingerprint": {...}, "fingerprint_id": "...",
 "runtime": {... describe() ...}, "timing": {... TimingConfig ...},
 "space": {"space": "fbnet", "resolution": 32, ...} | null,
 "ops": {key: {"spec": {...}, "median_ms": ..., ... all statistics ...}},
 "errors": {key: {"type": "export_error", "message": "..."}}, ...}
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "hwlat-lut/1"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_lut(
    fingerprint: dict[str, Any],
    fp_id: str,
    runtime: dict[str, Any],
    timing: dict[str, Any],
    space: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created_at": now(),
        "updated_at": now(),
        "fingerprint": fingerprint,
        "fingerprint_id": fp_id,
        "runtime": runtime,
        "timing": timing,
        "space": space,
        "ops": {},
        "errors": {},
        "host_state": [],
    }


def load_lut(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a LUT file (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file; pass another --out or remove it")
    return data


def save_lut(path: Path, lut: dict[str, Any]) -> None:
    lut["updated_at"] = now()
    save_json(path, lut, sort_keys=True)


def save_json(path: Path, data: Any, sort_keys: bool = False) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: a
    reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=sort_keys)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
