"""Shared pytest configuration for troupe's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import troupe

import faultkit
import kit

pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the fault suite (tests/faults) long, with a random seed it prints (make soak); "
        "--hypothesis-seed=SEED replays a run",
    )


@pytest.hookimpl(tryfirst=True)  # before hypothesis's plugin reads --hypothesis-seed
def pytest_configure(config: pytest.Config) -> None:
    given = config.getoption("hypothesis_seed", None)
    faultkit.configure(soak=bool(config.getoption("--soak")), seed=None if given is None else int(given))
    if faultkit.SOAK and given is None:
        config.option.hypothesis_seed = str(faultkit.SEED)  # one printed seed replays the whole soak run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = faultkit.lines()
    if found:
        mode = "soak" if faultkit.SOAK else "ci"
        terminalreporter.section(f"fault suite figures ({mode}, seed {faultkit.SEED})")
        for line in found:
            terminalreporter.write_line(line)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> troupe.JobStore:
    """Each job store, for the behaviour every store must have."""
    if request.param == "sqlite":
        return troupe.SQLiteJobStore(tmp_path / "jobs.sqlite", synchronous="normal")
    return troupe.MemoryJobStore()


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A Dask ``LocalCluster`` of 2 worker processes for the whole session (`kit.local_cluster`).

    Its nannies start a new worker for one that dies.
    """
    with kit.local_cluster(2) as cluster:
        yield cluster
