"""AgentSettings: the one settings class of the device agent (env prefix HWLAT_AGENT_;
the server URL and token also come from HWLAT_SERVER and HWLAT_TOKEN, like the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_spool_dir() -> Path:
    root = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(root) / "hwlat" / "agent-spool"


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HWLAT_AGENT_", extra="ignore", populate_by_name=True
    )

    server: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("HWLAT_AGENT_SERVER", "HWLAT_SERVER")
    )
    token: str | None = Field(
        None, validation_alias=AliasChoices("HWLAT_AGENT_TOKEN", "HWLAT_TOKEN")
    )
    batch: int = Field(default=16, ge=1, le=256)  # ops leased and measured (interleaved) together
    heartbeat_s: float = Field(default=30.0, gt=0)  # well inside the service's 120 s lease
    poll_s: float = Field(default=5.0, gt=0)  # wait between polls of an empty queue
    spool_dir: Path = Field(default_factory=default_spool_dir)
    # measure the service's reference panel (3 more ops in a batch) so that drift of
    # this machine shows, and can be divided out, in the service; with every Nth batch
    reference: bool = True
    reference_every: int = Field(default=1, ge=1, le=1000)
