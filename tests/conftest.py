"""Shared pytest configuration for troupe's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import troupe

pytest_plugins = ["pytester"]


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> troupe.JobStore:
    """Each job store, for the behaviour every store must have."""
    if request.param == "sqlite":
        return troupe.SQLiteJobStore(tmp_path / "jobs.sqlite", synchronous="normal")
    return troupe.MemoryJobStore()
