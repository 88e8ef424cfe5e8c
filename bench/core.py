"""troupe's actor core against raw trio, measured side by side in one run.

Run with ``make bench`` (or ``python bench/core.py``). Each figure is the
median of several repetitions; each ratio compares troupe with the raw trio
baseline measured in the same run:

(a) ``await tell`` one-way vs raw ``await send`` / ``async for`` on a memory
    channel (buffer 1024, the default mailbox capacity);
(b) a stream of ``tell_nowait`` into one actor vs the same raw loop;
(c) ``ask`` round trips vs raw request/response with a fresh reply channel
    per request. (b) and (c) run peers.py's tell and ask workloads
    (``bench/peerkit``), so both benchmarks measure the same code;
(d) 100k idle actors vs 100k raw tasks each blocked on its own memory
    channel: spawn rate and memory per actor (each side in a fresh process,
    so that one side's freed memory does not flatter the other).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
import trio.testing

import troupe

from peerkit import on_trio, on_troupe
from peerkit.common import Run


@troupe.message
class Ping:
    n: int = 0


class Sink(troupe.Actor[Ping]):
    """Counts what it gets; answers asks with the count."""

    def __init__(self) -> None:
        self.seen = 0

    async def receive(self, msg: Ping) -> int:  # noqa: ARG002 - counts, whatever it is
        self.seen += 1
        return self.seen


# -- (a) and (b): one-way messages -------------------------------------------------------


async def raw_send(n: int) -> float:
    send, receive = trio.open_memory_channel[int](1024)

    async def consumer() -> None:
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = time.perf_counter()
        async with send:
            for i in range(n):
                await send.send(i)
    return n / (time.perf_counter() - start)


async def troupe_tell(n: int) -> float:
    async with troupe.open_system() as system:
        sink = await system.spawn(Sink)
        msg = Ping()
        start = time.perf_counter()
        for _ in range(n):
            await sink.tell(msg)
        await sink.ask(msg)  # everything before it has been handled
        return n / (time.perf_counter() - start)


# -- (b) and (c): peers.py's workloads (bench/peerkit), the same code -----------------


def peer_rate(run: Callable[[int], Run]) -> Callable[[int], float]:
    """A peerkit workload (one ``trio.run`` each, its count checked) as a rate."""

    def rate(n: int) -> float:
        result = run(n)
        if result.count != n:
            msg = f"{run.__module__}.{run.__name__}({n}) counted {result.count}"
            raise RuntimeError(msg)
        return result.rate

    return rate


# -- (d) idle actors ----------------------------------------------------------------------


def idle_in_subprocess(kind: str, n: int) -> dict[str, float]:
    """Spawn ``n`` idle actors (or raw parked tasks) in a fresh process: peers.py's spawn workload."""
    out = subprocess.run(
        [sys.executable, Path(__file__).with_name("peers.py"), "--child", kind, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    run = json.loads(out)
    return {"rate": run["count"] / run["seconds"], "bytes": run["bytes_per_actor"]}


# -- the report ---------------------------------------------------------------------------


def median_of(repeat: int, fn: Callable[[int], Awaitable[float]], n: int) -> float:
    return statistics.median(trio.run(fn, n) for _ in range(repeat))


def median_sync(repeat: int, fn: Callable[[int], float], n: int) -> float:
    return statistics.median(fn(n) for _ in range(repeat))


def row(
    name: str, ours: float, raw: float, unit: str, target: float, *, lower_is_better: bool = False
) -> bool:
    ratio = raw / ours if lower_is_better else ours / raw
    ok = ratio >= target
    print(
        f"{name:<34} {ours:>12,.0f} {unit:<9} raw {raw:>12,.0f} {unit:<9} "
        f"ratio {ratio:5.2f}x  (target >= {target:.1f}x) {'ok' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per figure (median is reported)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages per one-way run")
    parser.add_argument("--asks", type=int, default=30_000, help="round trips per ask run")
    parser.add_argument("--actors", type=int, default=100_000, help="idle actors / raw tasks")
    args = parser.parse_args()

    r = args.repeat
    print(f"troupe {troupe.__version__} vs raw trio {trio.__version__}; median of {r} runs\n")
    raw_tput = median_of(r, raw_send, args.messages)
    results = [
        row("(a) await tell, one way", median_of(r, troupe_tell, args.messages), raw_tput, "msg/s", 1.0),
        row(
            "(b) tell_nowait stream",
            median_sync(r, peer_rate(on_troupe.tell), args.messages),
            raw_tput,
            "msg/s",
            3.0,
        ),
        row(
            "(c) ask round trips",
            median_sync(r, peer_rate(on_troupe.ask), args.asks),
            median_sync(r, peer_rate(on_trio.ask), args.asks),
            "trips/s",
            1.5,
        ),
    ]
    raw_idle_runs = [idle_in_subprocess("trio", args.actors) for _ in range(r)]
    troupe_idle_runs = [idle_in_subprocess("troupe", args.actors) for _ in range(r)]

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    results += [
        row(
            "(d) spawn rate, idle actors",
            med(troupe_idle_runs, "rate"),
            med(raw_idle_runs, "rate"),
            "/s",
            1.0,
        ),
        row(
            "(d) memory per idle actor",
            med(troupe_idle_runs, "bytes"),
            med(raw_idle_runs, "bytes"),
            "B",
            1.0,
            lower_is_better=True,
        ),
    ]
    print(f"\n{sum(results)} of {len(results)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
