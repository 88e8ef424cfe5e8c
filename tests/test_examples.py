"""Every example runs, through ``troupe run`` as a newcomer would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

import troupe

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["pipeline.py"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_through_the_cli(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "summary:" in result.stdout


def test_pipeline_does_what_it_says() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(EXAMPLES[0])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert "crashing on purpose" in out
    assert "crashed and was restarted by its supervisor" in out
    assert "Sum of squares of 1..20 without 7: 2821 (expected 2821)." in out
    assert "restarts       : 1" in out
    assert "dead letters   : 1" in out


async def test_pipeline_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    sys.path.insert(0, str(EXAMPLES[0].parent))
    try:
        import pipeline  # noqa: PLC0415 - the example is not a package
    finally:
        sys.path.pop(0)
    async with troupe.open_system() as system:
        assert await pipeline.main(system) == 2821
        assert system.statistics().restarts == 1
