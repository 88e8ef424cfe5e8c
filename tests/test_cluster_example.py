"""The cluster example (examples/cluster/): ``make demo-cluster`` end to end, and its nodes in one process.

The demo runs as ``make demo-cluster`` runs it: a nats-server, two workers
and a front end, each in its own ``troupe node`` process, and a worker
SIGKILLed a third of the way. The one-process tests run the same ``main``
functions on systems joined through an embedded server. Nothing sleeps to
synchronise: the demo follows the front end's lines, the tests wait on the
front end's progress.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import troupe

EXAMPLE = Path(__file__).parent.parent / "examples" / "cluster"

sys.path.insert(0, str(EXAMPLE))
try:  # the example's files are scripts, not a package: they import each other from their folder
    import front
    import worker
    from primes import BLOCK, START
finally:
    sys.path.remove(str(EXAMPLE))


def primes_between(start: int, stop: int) -> int:
    """A sieve's count, to check the workers' trial division."""
    sieve = bytearray([1]) * stop
    sieve[:2] = b"\x00\x00"
    for n in range(2, int(stop**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, stop, n)))
    return sum(sieve[start:stop])


def config(url: str | None, node: str) -> troupe.Cluster:
    return troupe.Cluster(url=url, node=node, name="example", heartbeat=0.2, failure_timeout=1.0)


def test_the_demo_completes_every_item_though_a_worker_is_killed_midway() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "demo.py")], capture_output=True, text=True, timeout=90, check=False
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "   front | all 60 items done" in out
    assert "    demo | all 60 items done, with a worker killed midway" in out
    assert "    demo | worker-1: killed by SIGKILL" in out
    lines = out.splitlines()
    done = [
        (int(found[1]), found[2], i)
        for i, line in enumerate(lines)
        if (found := re.match(r"   front \| done (\d+)/60: block \d+ holds \d+ primes \(by ([\w-]+)/", line))
    ]
    assert [n for n, _, _ in done] == list(range(1, 61))  # each item once
    by_node = collections.Counter(node for _, node, _ in done)
    assert set(by_node) == {"worker-1", "worker-2"}  # both worked until the kill
    killed = re.search(r"SIGKILL worker-1 \(pid \d+\) with (\d+) of 60 items done", out)
    assert killed is not None
    assert 20 <= int(killed[1]) < 30  # a third of the way, as read from the front end's lines
    # the killed worker stopped contributing: none of the last items are its
    assert {node for n, node, _ in done if n > 40} == {"worker-2"}
    assert f"items computed per node: worker-1 {by_node['worker-1']}, worker-2 {by_node['worker-2']}" in out
    retries = [i for i, line in enumerate(lines) if line.startswith("   front | retry block ")]
    if (
        retries
    ):  # the asks worker-1 held timed out: its loss was detected first (failure_timeout < ask timeout)
        lost = [
            i for i, line in enumerate(lines) if "lookout: all of node worker-1's counters are gone" in line
        ]
        assert len(lost) == 1
        assert lost[0] < retries[0]
        assert "no heartbeat for 2.0 s" in lines[lost[0]]
        assert all(node == "worker-2" for _, node, i in done if i > lost[0])
    total = primes_between(START, START + 60 * BLOCK)
    assert f"   front | {total} primes between 1,000,000 and 1,600,000; {len(retries)} asks repeated" in out
    assert "Traceback" not in out + result.stderr


async def test_a_worker_and_the_front_end_in_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    async with (
        troupe.open_system(name="worker", cluster=config(None, "worker-a")) as a,
        troupe.open_system(name="front", cluster=config(a.cluster.url, "front")) as system,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(worker.main, a)
        counts = await front.main(system, items=12, workers=1)
        nursery.cancel_scope.cancel()
    assert counts == {"worker-a": 12}
    out = capsys.readouterr().out
    assert "3 prime counters registered as 'primes' on node worker-a" in out
    assert "waiting for 1 workers' 3 prime counters" in out
    assert (
        len(
            re.findall(
                r"^done \d+/12: block \d+ holds \d+ primes \(by worker-a/primes-\d\)$", out, re.MULTILINE
            )
        )
        == 12
    )
    total = primes_between(START, START + 12 * BLOCK)
    assert out.splitlines()[-3:] == [
        "  worker-a: 12 items",
        f"{total} primes between 1,000,000 and 1,120,000; 0 asks repeated",
        "all 12 items done",
    ]


async def test_the_front_end_finishes_when_a_worker_leaves_midway(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "ASK_TIMEOUT", 1.0)  # asks the leaving worker held are asked again sooner
    fifth = trio.Event()
    record = front.Tally.record

    def recorded(tally: front.Tally, answer: Any) -> None:
        record(tally, answer)
        if tally.done == 5:
            fifth.set()

    monkeypatch.setattr(front.Tally, "record", recorded)

    async def leaving_worker(url: str) -> None:
        async with (
            troupe.open_system(name="b", cluster=config(url, "worker-b")) as b,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(worker.main, b)
            await fifth.wait()
            nursery.cancel_scope.cancel()  # then the system stops: its counters leave the cluster

    async with (
        troupe.open_system(name="worker", cluster=config(None, "worker-a")) as a,
        troupe.open_system(name="front", cluster=config(a.cluster.url, "front")) as system,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(worker.main, a)
        nursery.start_soon(leaving_worker, a.cluster.url)
        counts = await front.main(system, items=30, workers=2)
        nursery.cancel_scope.cancel()
    assert sum(counts.values()) == 30
    assert set(counts) <= {"worker-a", "worker-b"}
    out = capsys.readouterr().out
    assert "lookout: all of node worker-b's counters are gone: it left the cluster" in out
    assert sorted(int(n) for n in re.findall(r"^done (\d+)/30: ", out, re.MULTILINE)) == list(range(1, 31))
    assert out.endswith("all 30 items done\n")
