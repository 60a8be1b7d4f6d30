"""The agent's spool: survives a restart, one slot per live agent, atomic rewrites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devices.spool import Spool


def test_entries_survive_a_new_process(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, "dev")
    kept = spool.add("lease-1", "run-1", [{"item_id": 1}], [])
    gone = spool.add("lease-2", "run-1", [], [{"item_id": 2, "type": "timeout"}])
    spool.remove(gone)
    again = Spool(spool.path)
    assert again.entries == [kept]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_live_agents_get_separate_slots_and_a_dead_ones_slot_is_reused(tmp_path: Path) -> None:
    first = Spool.claim(tmp_path, "dev")
    second = Spool.claim(tmp_path, "dev")
    assert first.path != second.path
    code = (
        f"from devices.spool import Spool; from pathlib import Path; "
        f"print(Spool.claim(Path({str(tmp_path)!r}), 'dev').path.name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "dev-2.jsonl"  # slots 0 and 1 are held by this process
    # that process has exited, so its lock is gone and the slot is free again
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "dev-2.jsonl"
