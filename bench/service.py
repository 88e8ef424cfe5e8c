"""Hemi's task service at scale: generated task lists of 10k and 20k tasks.

Run with ``make bench`` (or ``python bench/service.py``); medians of several runs.

Each task has a ``function`` handler (a trivial body, one message to its
task actor and one back). Two shapes, written as an XML task list in
memory, loaded and run to completion:

- chain:  t0 <- t1 <- ... <- tN-1, each a child (auto-execute) of the one before;
- fan-in: one root waiting for N-1 auto-execute children.

Targets (issue 5): the 20k/10k time ratio <= 2.2 (linear), and 10k tasks
in under 2x the time of 10k bare actors doing the same number of messages
(spawned, then each asked once: one message in, one answer out).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import trio

import troupe


def done(task_id: str, service: troupe.TaskService) -> bool:  # noqa: ARG001 - the handler's signature
    return True


def chain(n: int) -> str:
    rows = [
        f'<task id="t{i}" handler-type="function" handler="done">'
        f'<task rid="t{i + 1}" auto-execute="1"/></task>'
        for i in range(n - 1)
    ]
    rows.append(f'<task id="t{n - 1}" handler-type="function" handler="done"/>')
    return "<tasks>\n" + "\n".join(rows) + "\n</tasks>\n"


def fan_in(n: int) -> str:
    children = "".join(f'<task rid="t{i}" auto-execute="1"/>' for i in range(1, n))
    rows = [f'<task id="t0" handler-type="function" handler="done">{children}</task>']
    rows += [f'<task id="t{i}" handler-type="function" handler="done"/>' for i in range(1, n)]
    return "<tasks>\n" + "\n".join(rows) + "\n</tasks>\n"


async def run_list(make: Callable[[int], str], n: int) -> float:
    document = make(n)
    async with troupe.open_system():
        service = await troupe.new_task_service(functions={"done": done})
        start = time.perf_counter()
        await service.load(document, format="xml")
        await service.execute("t0")
        elapsed = time.perf_counter() - start
        assert await service.state("t0") is troupe.TaskState.COMPLETE
        return elapsed


class Echo(troupe.Actor[int]):
    async def receive(self, msg: int) -> int:
        return msg


async def bare_actors(n: int) -> float:
    async with troupe.open_system() as system:
        start = time.perf_counter()
        refs = [await system.spawn(Echo) for _ in range(n)]
        for i, ref in enumerate(refs):
            await ref.ask(i)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    n, r = args.tasks, args.repeat
    print(f"troupe {troupe.__version__}, trio {trio.__version__}; median of {r} runs\n")
    met = 0
    for label, make in (("chain", chain), ("fan-in", fan_in)):
        # the three runs alternate within each repeat, so drifts of the machine do not enter the ratios
        rounds = [
            (trio.run(run_list, make, n), trio.run(run_list, make, 2 * n), trio.run(bare_actors, n))
            for _ in range(r)
        ]
        small = statistics.median(a for a, _, _ in rounds)
        big = statistics.median(b for _, b, _ in rounds)
        bare = statistics.median(c for _, _, c in rounds)
        linear = statistics.median(b / a for a, b, _ in rounds)
        versus = statistics.median(a / c for a, _, c in rounds)
        ok_linear, ok_bare = linear <= 2.2, versus < 2.0
        met += ok_linear + ok_bare
        print(
            f"{label:>6}: {n:,} tasks {small:.3f} s ({small / n * 1e6:.1f} us/task), "
            f"{2 * n:,} tasks {big:.3f} s: ratio {linear:.2f}  "
            f"target <= 2.2 {'ok' if ok_linear else 'MISSED'}"
        )
        print(
            f"{'':>6}  vs {n:,} bare actors, spawned and asked once each: {bare:.3f} s: "
            f"{versus:.2f}x  target < 2x {'ok' if ok_bare else 'MISSED'}"
        )
    print(f"\n{met} of 4 targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
