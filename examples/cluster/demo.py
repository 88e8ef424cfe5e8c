"""``make demo-cluster``: a front end and two workers in three processes, and one worker killed midway.

Run it with ``make demo-cluster`` (that is ``python examples/cluster/demo.py``).
It starts a private nats-server on a free local port, then three cluster
nodes, each one ``troupe node`` process:

- ``worker-1`` and ``worker-2`` run ``worker.py``: each registers a pool of
  prime counters under the name ``primes``;
- ``front`` runs ``front.py``: it asks the ``primes`` group for 60 blocks of
  numbers, 6 asks at a time, and asks again whatever failed.

Once the front end reports a third of the blocks done, the demo SIGKILLs
``worker-1``: its asks in flight time out and are asked again, the NATS
server hands them to ``worker-2``, and the front end's lookout reports the
node lost once its heartbeats have stopped for ``FAILURE_TIMEOUT`` seconds.
Every line the nodes print is shown, prefixed with the node's name. The
demo ends with the count of blocks each node computed, stops the rest, and
exits 0 only if every block was done.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from troupe.cluster import run_server

HERE = Path(__file__).resolve().parent
WORKERS = ("worker-1", "worker-2")
KILLED = "worker-1"
"""The worker the demo SIGKILLs midway."""
HEARTBEAT = 0.5
"""Seconds between a node's heartbeats (the default is 1.0)."""
FAILURE_TIMEOUT = 2.0
"""A node silent this long is lost (the default is 4.0): the demo's run stays short."""
STOP_TIMEOUT = 10.0
"""Seconds a node has to stop after SIGINT before it is killed."""
DEADLINE = 120.0
"""Seconds the whole demo may take before it stops everything and fails."""
DONE = re.compile(r"^done (?P<done>\d+)/(?P<items>\d+): .* \(by (?P<node>[^/ ]+)/")
"""The front end's line for each block done."""


def node_command(file: str, node: str, url: str) -> list[str]:
    """The command line of one node: ``troupe node`` running ``file`` of this folder."""
    return [
        sys.executable,
        "-m",
        "troupe.cli",
        "node",
        str(HERE / file),
        "--cluster",
        url,
        "--node",
        node,
        "--plain",
        "--heartbeat",
        str(HEARTBEAT),
        "--failure-timeout",
        str(FAILURE_TIMEOUT),
    ]


async def start_node(file: str, node: str, url: str) -> trio.Process:
    """Start a node; its output (stdout and stderr) is unbuffered, for the demo to follow line by line."""
    return await trio.lowlevel.open_process(
        node_command(file, node, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def lines(process: trio.Process) -> AsyncIterator[str]:
    """The lines ``process`` prints, as they come, until it closes its output."""
    assert process.stdout is not None
    buffer = b""
    while chunk := await process.stdout.receive_some():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace").rstrip("\r")
    if buffer:
        yield buffer.decode(errors="replace")


def show(node: str, line: str) -> None:
    """Print a node's line, prefixed with its name."""
    print(f"{node:>8} | {line}", flush=True)


class Run:
    """What the demo saw: the blocks done per node, and when the worker was killed."""

    def __init__(self) -> None:
        self.items = 0
        self.done = 0
        self.by_node: collections.Counter[str] = collections.Counter()
        self.killed_at: int | None = None
        self.all_done = False
        self.failure: str | None = None
        self.interrupted = False


async def follow_front(front: trio.Process, workers: dict[str, trio.Process], run: Run) -> None:
    """Show the front end's lines, count its blocks, and SIGKILL ``KILLED`` a third of the way."""
    async for line in lines(front):
        show("front", line)
        if found := DONE.match(line):
            run.items = int(found["items"])
            run.done = int(found["done"])
            run.by_node[found["node"]] += 1
            if run.killed_at is None and run.done >= run.items / 3:
                workers[KILLED].kill()  # SIGKILL: no goodbye, no clean leave
                run.killed_at = run.done
                print(
                    f"    demo | SIGKILL {KILLED} (pid {workers[KILLED].pid}) with {run.done} of "
                    f"{run.items} items done",
                    flush=True,
                )
        elif line == f"all {run.items} items done":
            run.all_done = True
    status = await front.wait()
    if status != 0:
        run.failure = f"the front end exited with status {status}"


async def follow_worker(node: str, worker: trio.Process, front: trio.Process, run: Run) -> None:
    """Show a worker's lines; a worker that ends while the front end runs (not killed) fails the demo."""
    async for line in lines(worker):
        show(node, line)
    status = await worker.wait()
    if front.returncode is None and not (node == KILLED and run.killed_at is not None):
        run.failure = f"{node} exited with status {status} while the front end was running"
        front.send_signal(signal.SIGINT)


async def stop(node: str, process: trio.Process) -> None:
    """SIGINT ``process`` (a clean stop, as Ctrl-C), SIGKILL it after ``STOP_TIMEOUT`` s; wait for it."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        with trio.move_on_after(STOP_TIMEOUT):
            await process.wait()
        if process.returncode is None:
            print(f"    demo | {node} did not stop within {STOP_TIMEOUT} s of SIGINT: SIGKILL", flush=True)
            process.kill()
    await process.wait()


async def run_nodes(url: str, run: Run, processes: dict[str, trio.Process]) -> None:
    """Start the nodes, follow them until the front end ends, then stop the workers."""
    for node in WORKERS:
        processes[node] = await start_node("worker.py", node, url)
    processes["front"] = front = await start_node("front.py", "front", url)
    workers = {node: processes[node] for node in WORKERS}
    async with trio.open_nursery() as nursery:
        for node, worker in workers.items():
            nursery.start_soon(follow_worker, node, worker, front, run)
        await follow_front(front, workers, run)
        for node, worker in workers.items():
            await stop(node, worker)


async def demo() -> int:
    """Run the demo; 0 if every item was done despite the killed worker, 130 after Ctrl-C, else 1."""
    run = Run()
    processes: dict[str, trio.Process] = {}
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with run_server() as server:
            print(f"    demo | nats-server at {server.url} (troupe cluster status --cluster {server.url})")
            try:
                async with trio.open_nursery() as nursery:

                    async def interrupt() -> None:
                        async for signum in signals:
                            run.failure = f"interrupted by {signal.Signals(signum).name}"
                            run.interrupted = True
                            nursery.cancel_scope.cancel()

                    nursery.start_soon(interrupt)
                    with trio.move_on_after(DEADLINE) as deadline:
                        await run_nodes(server.url, run, processes)
                    if deadline.cancelled_caught:
                        run.failure = f"not done after {DEADLINE} s"
                    nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    for node, process in processes.items():
                        await stop(node, process)
    status = report(run, processes)
    return 130 if run.interrupted else status


def ended(status: int | None) -> str:
    """How a node's process ended, from its exit status."""
    if status is None:
        return "still running"
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def report(run: Run, processes: dict[str, trio.Process]) -> int:
    """Print what happened; the demo's exit status."""
    for node, process in processes.items():
        print(f"    demo | {node}: {ended(process.returncode)}")
    counts = ", ".join(f"{node} {count}" for node, count in sorted(run.by_node.items()))
    print(f"    demo | items computed per node: {counts or 'none'}")
    if run.killed_at is not None:
        print(
            f"    demo | {KILLED} was SIGKILLed with {run.killed_at} of {run.items} items done; "
            f"it computed {run.by_node[KILLED]} in all"
        )
    complete = run.all_done and run.done == run.items > 0 and run.killed_at is not None
    if run.failure is None and complete:
        print(f"    demo | all {run.items} items done, with a worker killed midway")
        return 0
    why = run.failure or (
        "the worker was never killed" if run.killed_at is None else f"{run.done} of {run.items} items done"
    )
    print(f"    demo | failed: {why}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(trio.run(demo))
