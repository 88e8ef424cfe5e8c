"""bench/explore.py runs end to end, tiny: every contender's row, the targets, its JSON; the body is right."""

from __future__ import annotations

import json
from pathlib import Path

import explore
import trio

from kit import run_python

BENCH = Path(__file__).parents[2] / "bench"


def test_the_body_handles_50_messages_over_5_actors() -> None:
    assert explore.MESSAGES == 50
    trio.run(explore.body)  # its own assertions: every job added once, the sum, 50 messages handled


def test_the_explore_benchmark_prints_every_contender_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "explore.json"
    printed = run_python(BENCH / "explore.py", "--repeat", "1", "--schedules", "3", "--json", out).stdout
    rows = [line.split()[0] for line in printed.splitlines() if "schedules/s [" in line]
    assert rows == ["random", "pct", "plain"]
    assert "random: schedules per second" in printed
    assert "pct: schedules per second" in printed
    got = json.loads(out.read_text())
    assert got["body"] == {"actors": 5, "messages": 50}
    assert set(got["results"]) == {"random", "pct", "plain"}
    for who in ("random", "pct"):
        (one,) = got["results"][who]
        assert one["schedules"] == 3
        assert one["steps"] > 50  # a task step per message at the least
        assert 1 <= one["interleavings"] <= 3
    targets = [t["target"] for t in got["targets"]]
    assert targets == ["random: schedules per second", "pct: schedules per second"]
