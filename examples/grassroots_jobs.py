"""Grassroots' tasks in troupe: a counter that signals its consumer, and command tasks.

Run it with ``troupe run examples/grassroots_jobs.py`` (or ``python examples/grassroots_jobs.py``).

- Five worker tasks each do some work and increment a shared counter with
  limit 5. The counter signals its consumer (an actor) exactly once, when
  the fifth one is done.
- Command tasks run real programs (no shell) and report success or failure.
"""

from __future__ import annotations

import sys

import trio

import troupe


class Consumer(troupe.Actor[troupe.LimitReached]):
    """Waits for the counter's signal."""

    def __init__(self, done: trio.Event) -> None:
        self.done = done

    async def receive(self, msg: troupe.LimitReached) -> None:
        print(f"  consumer: the counter reached its limit ({msg.count} workers finished)")
        self.done.set()


async def worker(n: int, counter: troupe.TaskCounter) -> int:
    await trio.sleep(0.01 * n)
    count = await counter.increment()
    print(f"  worker {n}: done ({count} of 5)")
    return n * n


async def main(system: troupe.ActorSystem) -> dict[str, object]:
    print("Five workers and a counter with limit 5:")
    done = trio.Event()
    consumer = await system.spawn(lambda: Consumer(done), name="consumer")
    counter = await troupe.new_counter(5)
    await counter.subscribe(consumer)
    workers = [await troupe.run_task(worker, n, counter) for n in range(1, 6)]
    await done.wait()
    squares = [await w.result() for w in workers]

    print("\nCommand tasks:")
    commands = {
        "python prints its version": [sys.executable, "--version"],
        "a command that fails": [sys.executable, "-c", "raise SystemExit(2)"],
        "a program that does not exist": ["no-such-program-for-the-demo"],
    }
    outcomes: dict[str, str] = {}
    for label, argv in commands.items():
        task = await troupe.run_command(argv)
        error = await task.error()
        if error is None:
            result = await task.result()
            outcome = f"succeeded: {result.stdout.decode().strip() or result.stderr.decode().strip()}"
        else:
            outcome = f"failed: {type(error).__name__}: {error}"
        outcomes[label] = outcome
        print(f"  {label}: {outcome}")
    return {"squares": squares, "commands": outcomes}


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
