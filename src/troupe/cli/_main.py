"""``troupe``: the command line."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

import trio

from ..actors import ActorFailed, ActorSystem, SystemStatistics, open_system
from ..protocol import BusEvent, TroupeError
from ._load import load_target

_WORDS = {
    "troupe.spawned": "spawned",
    "troupe.started": "started",
    "troupe.restarted": "restarted",
    "troupe.failed": "failed",
    "troupe.stopped": "stopped",
}


def _summary(stats: SystemStatistics) -> str:
    lines = [
        "",
        "summary:",
        f"  actors started : {stats.actors_started}",
        f"  restarts       : {stats.restarts}",
        f"  failures       : {stats.failures}",
        f"  dead letters   : {stats.dead_letters}",
    ]
    if stats.stuck_at_shutdown:
        lines.append(f"  stuck at shutdown (cancelled): {', '.join(stats.stuck_at_shutdown)}")
    return "\n".join(lines)


async def _show_events(system: ActorSystem, task_status: trio.TaskStatus[None]) -> None:
    async with system.events.listen("troupe.*") as events:
        task_status.started()
        async for event in events:
            _print_event(event)


def _print_event(event: BusEvent) -> None:
    word = _WORDS.get(event.topic)
    if word is not None:
        print(f"  [{word:>9}] {event.data}", flush=True)


async def _run(target: str, *, events: bool) -> int:
    fn = load_target(target)
    status = 0
    try:
        async with open_system(name=target) as system, trio.open_nursery() as nursery:
            if events:
                await nursery.start(_show_events, system)
            await fn(system)
            nursery.cancel_scope.cancel()
    except ActorFailed as exc:
        print(f"troupe: {exc}", file=sys.stderr)
        status = 1
    print(_summary(system.statistics()))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``troupe`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="troupe", description="Run troupe actor topologies.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run an async function that receives an open actor system",
        description="Run FILE[:FUNCTION] (default function: main) with an open system, then print a summary.",
    )
    run.add_argument("target", help="a .py file or module, optionally :FUNCTION (default main)")
    run.add_argument(
        "--events", action="store_true", help="print the actors' lifecycle events as they happen"
    )
    args = parser.parse_args(argv)
    try:
        return trio.run(functools.partial(_run, args.target, events=args.events))
    except TroupeError as exc:
        print(f"troupe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("troupe: interrupted", file=sys.stderr)
        return 130
