"""``troupe``: the command line."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

import trio

from ..actors import ActorFailed, ActorSystem, SystemStatistics, open_system
from ..protocol import BusEvent, TroupeError
from ..tasks import TaskListError, TaskServiceError
from ._load import load_target
from ._tasklists import graph, is_task_list, run_task_list

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


_EPILOG = """examples:
  troupe run examples/pipeline.py
  troupe run examples/pipeline.py:main --events
  troupe run examples/hemi/page_load.xml --entry ExampleProcess \\
      --functions examples/hemi/page_load.py --return dom_event_window_load
  troupe graph examples/hemi/page_load.xml --format mermaid
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="troupe",
        description="Run troupe actor topologies and task lists.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run an async function that receives an open actor system, or a task list",
        description=(
            "Run FILE[:FUNCTION] (default function: main) with an open system, then print a summary; "
            "or load a task list (.xml, .json, .toml), execute --entry and print each task's final state "
            "(exit status 1 if it did not complete)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "target", help="a .py file or module, optionally :FUNCTION (default main); or a task list"
    )
    run.add_argument(
        "--events", action="store_true", help="print the actors' lifecycle events as they happen"
    )
    run.add_argument("--entry", metavar="ID", help="task list: the task to execute after loading")
    run.add_argument(
        "--functions", metavar="MODULE", help="task list: a module or .py file whose functions it may name"
    )
    run.add_argument(
        "--return",
        dest="returns",
        action="append",
        default=[],
        metavar="NAME",
        help="task list: return this named dependency after executing (repeatable)",
    )
    run.add_argument(
        "--trusted", action="store_true", help="task list: allow script actions (Python source you wrote)"
    )
    draw = commands.add_parser(
        "graph",
        help="draw a task list",
        description="Print a task list (.xml, .json, .toml) as a Mermaid flowchart or a Graphviz dot graph.",
        epilog="example:\n  troupe graph examples/hemi/page_load.xml --format dot | dot -Tpng > tasks.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    draw.add_argument("file", help="the task list")
    draw.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``troupe`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "graph":
            print(graph(args.file, args.format), end="")
            return 0
        if is_task_list(args.target):
            run = functools.partial(
                run_task_list,
                args.target,
                entry=args.entry,
                functions=args.functions,
                returns=args.returns,
                trusted=args.trusted,
            )
            return trio.run(run)
        return trio.run(functools.partial(_run, args.target, events=args.events))
    except (TroupeError, TaskListError, TaskServiceError) as exc:
        print(f"troupe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("troupe: interrupted", file=sys.stderr)
        return 130
