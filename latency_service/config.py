"""ServiceSettings: the one settings class of the service (env prefix HWLAT_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from latency_service.repository.remeasure import Rules


def data_dir() -> Path:
    """The user's data folder for hwlat (XDG), where the default SQLite file lives."""
    root = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(root) / "hwlat"


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'hwlat.db'}"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWLAT_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    admin_token: str | None = None  # unset: `hwlat serve` makes one and keeps it in data_dir
    read_access: Literal["open", "token"] = "open"
    read_token: str | None = None  # accepted for reads when read_access == "token"
    max_body_bytes: int = Field(default=4 << 20, ge=1024)  # 10 000 keys fit in ~1 MiB
    lease_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # a batch whose reference panel ran this much slower or faster than the device's
    # baseline is flagged as drifted (a quiet machine stays well within it)
    drift_tolerance: float = Field(default=0.05, gt=0, lt=1)
    # measure an op again when its batch's panel read more than this off the baseline
    # (0: never); ops of such batches miss a predictor's ±10% far more often
    remeasure_drift: float = Field(default=0.10, ge=0, lt=1)
    # ... or when its own 95% CI half-width exceeds this share of its median (0: never)
    remeasure_ci: float = Field(default=0.15, ge=0)
    remeasure_max: int = Field(default=2, ge=0, le=10)  # repeats per op and revision

    def remeasure_rules(self) -> Rules:
        return Rules(self.remeasure_drift, self.remeasure_ci, self.remeasure_max)

    max_batch_keys: int = Field(default=10_000, ge=1)
    # 0: every read checks (coalesced) that its device's snapshot is current, so a read
    # sent after an upload returned sees it on any worker; > 0: a snapshot younger than
    # this is served unchecked (another worker's upload may show up that late)
    read_cache_s: float = Field(default=0.0, ge=0)
    # device snapshots a worker keeps (least recently loaded go first): ~1.3 MB each for
    # 1 500 measured ops; a device read after it was dropped is loaded whole again
    read_cache_devices: int = Field(default=1024, ge=1)
