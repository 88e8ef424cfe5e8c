"""A million idle actors in one process, spawned and shut down cleanly.

Run with ``make bench-million`` (not part of CI: it needs about 3 GB of
memory and a minute or two). Prints the spawn rate, memory per actor (RSS
growth over the spawn, divided by the count), the time the shutdown took,
and checks that every actor answered a message and that none is alive once
``open_system`` has returned.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing

import troupe

from peerkit.common import peak_rss_bytes, rss_bytes
from peerkit.on_troupe import Count, Hit, Sink


async def million(n: int, *, probes: int) -> dict[str, Any]:
    refs: list[troupe.ActorRef[Hit | Count]] = []
    async with troupe.open_system(shutdown_timeout=3600) as system:
        before = rss_bytes()
        start = time.perf_counter()
        for i in range(n):
            refs.append(await system.spawn(Sink))
            if i and i % 100_000 == 0:
                rate = i / (time.perf_counter() - start)
                print(
                    f"  {i:>9,} spawned ({rate:,.0f}/s, {(rss_bytes() - before) / i:,.0f} B/actor)",
                    flush=True,
                )
        await trio.testing.wait_all_tasks_blocked()
        spawned = time.perf_counter() - start
        grown = peak_rss_bytes() - before
        print(f"spawned {n:,} idle actors in {spawned:.1f} s: {n / spawned:,.0f}/s")
        print(f"memory: {grown / n:,.0f} B per idle actor (peak RSS growth {grown / 2**20:,.0f} MiB)")
        # Every actor is really there: a spread of them answers an ask.
        step = max(1, n // probes)
        answered = sum([await refs[i].ask(Count()) == 0 for i in range(0, n, step)])
        print(f"{answered:,} of {len(range(0, n, step)):,} probed actors answered")
        stop_start = time.perf_counter()
    stopped = time.perf_counter() - stop_start
    alive = sum(ref.alive for ref in refs)
    print(f"shut down in {stopped:.1f} s ({n / stopped:,.0f} actors/s); still alive: {alive}")
    return {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "count": n,
        "spawn_rate": n / spawned,
        "bytes_per_actor": grown / n,
        "probed": len(range(0, n, step)),
        "answered": answered,
        "shutdown_seconds": stopped,
        "alive_after": alive,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="actors to spawn (default 1,000,000)")
    parser.add_argument("--probes", type=int, default=1_000, help="actors asked once each to prove they run")
    parser.add_argument("--json", type=Path, help="also write the figures here (for bench/report.py)")
    args = parser.parse_args()
    gc.freeze()  # the imports' objects are not what we measure
    result = trio.run(lambda: million(args.count, probes=args.probes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["alive_after"] == 0 and result["answered"] == result["probed"] else 1


if __name__ == "__main__":
    sys.exit(main())
