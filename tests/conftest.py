"""Shared fixtures: tests never write to the user's cache."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("HWLAT_CACHE_DIR")
    os.environ["HWLAT_CACHE_DIR"] = str(tmp_path_factory.mktemp("hwlat-cache"))
    yield
    if old is None:
        os.environ.pop("HWLAT_CACHE_DIR", None)
    else:
        os.environ["HWLAT_CACHE_DIR"] = old


@pytest.fixture
def two_threads() -> Iterator[None]:
    """torch on 2 threads for the test, as one-process runs compared with two ranks were
    checked (1 and 2 threads reduce in different orders); an earlier test may have left
    torch on 1: the torch-cpu runtime sets the process-wide count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
