"""bench/cluster.py (issue 19's cross-process figures), tiny: every contender runs, every count matches.

Correctness only (timing never goes into tests): these keep the cluster
benchmark and its processes (bench/clusterkit) from rotting.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cluster
import pytest

from troupe.cluster._server import NatsServer

from clusterkit import results
from clusterkit.children import ChildFailed, child
from clusterkit.common import Run

BENCH = Path(__file__).parents[2] / "bench"


def test_the_cluster_benchmark_runs_every_contender_tiny_and_writes_json(tmp_path: Path) -> None:
    results = tmp_path / "cluster.json"
    ran = subprocess.run(
        [
            sys.executable,
            BENCH / "cluster.py",
            "--scale",
            "0.0002",  # 40 messages, 8 round trips, 8 pool items
            "--repeat",
            "1",
            "--cost",
            "2000",
            "--json",
            results,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, f"bench/cluster.py failed:\n{ran.stdout}\n{ran.stderr}"
    out = ran.stdout
    report = json.loads(results.read_text())
    sizes = {w["key"]: w["size"] for w in report["workloads"]}
    assert sizes == {"tell": 40, "ask": 8, "pool-1": 8, "pool-2": 8}
    for contender in cluster.CONTENDERS:
        for work in report["workloads"]:
            runs = report["results"][work["key"]].get(contender.name)
            if contender.measure(work["kind"]) is None:
                assert runs is None, (work["key"], contender.name)  # absent, not a placeholder
                continue
            assert runs is not None, (work["key"], contender.name)
            assert [r["count"] for r in runs] == [work["size"]], (work["key"], contender.name)
            assert all(r["seconds"] > 0 for r in runs)
    for key in ("pool-1", "pool-2"):
        for runs in report["results"][key].values():
            assert sum(runs[0]["shares"]) == sizes[key]
            assert len(runs[0]["shares"]) == int(key[-1])
    assert "tell stream into another process (40 msgs of 58 B)" in out
    assert "x 1" in out or "x 0" in out  # ratios to raw nats-py are printed
    assert "pool scaling, 2 worker processes over 1: median of the rounds' ratios" in out
    assert "of bare's" in out  # each pool's scaling as a share of the machine's ceiling


def test_a_pools_share_of_the_ceiling_is_its_scaling_over_the_bare_processes() -> None:
    table = {"pool-1": {"troupe": [50.0], "bare": [60.0]}, "pool-2": {"troupe": [85.0], "bare": [102.0]}}
    assert results.of_ceiling(table, "troupe") == pytest.approx(1.7 / 1.7)
    table["pool-2"]["troupe"] = [68.0]
    assert results.of_ceiling(table, "troupe") == pytest.approx(1.36 / 1.7)
    assert results.of_ceiling({"pool-1": {"troupe": [1.0]}, "pool-2": {"troupe": [2.0]}}, "troupe") is None


def _work(size: int) -> cluster.Workload:
    return cluster.Workload("tell", "tell", size, "tell", "msg/s")


def test_a_run_that_lost_a_message_stops_the_benchmark() -> None:
    cluster.check("nats-py", _work(8), Run(0.5, 8))
    with pytest.raises(RuntimeError, match="nats-py tell: counted 7, expected 8; a message was lost"):
        cluster.check("nats-py", _work(8), Run(0.5, 7))
    with pytest.raises(RuntimeError, match="counted 8, expected 8"):
        cluster.check("nats-py", _work(8), Run(math.inf, 8))  # the subscriber never saw its last message


@pytest.mark.parametrize("module", ["on_nats", "on_bridge", "on_native", "on_troupe"])
async def test_a_stalled_subscriber_reports_what_it_counted_when_told_to_stop(
    module: str, nats_server: NatsServer
) -> None:
    async with child(module, "subscriber", url=nats_server.url, n=5) as subscriber:
        assert await subscriber.report(20) == {"ready": True}
        async with child(module, "publisher", url=nats_server.url, n=3) as publisher:  # 2 short
            assert (await publisher.report(20))["count"] == 3
            await publisher.finish(20)
        said = await subscriber.stop(20)  # a report it had made by itself would be read here instead
    assert said["end"] is None
    assert 0 <= said["count"] <= 3  # the last ones may still be on their way when it is told


async def test_a_role_that_fails_is_reported_with_its_stderr() -> None:
    async with child("on_nats", "requester", url="nats://127.0.0.1:4222", n=1, burst=2) as requester:
        with pytest.raises(ChildFailed) as failed:
            await requester.report(20)
    said = str(failed.value)
    assert said.startswith("on_nats.requester exited with status 1 without reporting; its stderr:")
    assert said.endswith("TypeError: requester() got an unexpected keyword argument 'burst'")


def _table(*, troupe: bool) -> cluster.Table:
    def cell(*rates: float) -> cluster.Cell:
        return cluster.Cell([Run(1.0 / r, 1) for r in rates])

    table: cluster.Table = {
        "tell": {"nats-py": cell(100, 110, 90)},
        "ask": {"nats-py": cell(10), "thespian": cell(4)},
        "pool-1": {"nats-py": cell(10)},
        "pool-2": {"nats-py": cell(19)},
    }
    if troupe:
        table["tell"]["troupe"] = cell(80, 80, 80)
        table["ask"]["troupe"] = cell(11)
        table["pool-1"]["troupe"] = cell(10)
        table["pool-2"]["troupe"] = cell(17)
    return table


def test_troupe_ratios_and_targets_appear_only_with_troupe_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rows = cluster.workloads(1.0, cluster.COST)
    cluster.print_table(rows, _table(troupe=False))
    assert cluster.print_targets(_table(troupe=False)) == []
    out = capsys.readouterr().out
    assert "troupe" not in out
    assert "x 0.40 of nats-py" in out  # thespian's ask
    assert "nats-py   x 1.90   [x1.90 - x1.90]  x1.90 (the target's measure)" in out  # the pool's scaling

    cluster.print_table(rows, _table(troupe=True))
    verdicts = cluster.print_targets(_table(troupe=True))
    out = capsys.readouterr().out
    assert "troupe x 0.80" in out  # on nats-py's tell row
    assert [(v["target"], round(v["value"], 2), v["ok"]) for v in verdicts] == [
        ("tell stream over raw nats-py", 0.8, True),
        ("ask over raw nats-py", 1.1, True),
        ("ask over Thespian", 2.75, False),
        ("pool on 2 workers over 1", 1.7, False),
    ]
    assert "MISSED" in out
