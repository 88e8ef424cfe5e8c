"""``troupe``: the command line (click), with one-line errors and exit statuses.

Exit statuses: 0 done; 1 the run did not succeed (an actor failed beyond its
supervisor, the topology raised, a task list's entry did not complete, a
cancel came too late); 2 an error in what was asked (a bad target or one
that cannot be imported, a bad store, a bad option); 130 interrupted
(Ctrl-C); N when the topology called ``sys.exit(N)``. Whatever the end, at
most one line on stderr, never a traceback (unless ``--traceback``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import click
import trio

from ..jobs import JobStatus
from ..protocol import TroupeError
from ._cluster import cluster_group
from ._dashboard import DEFAULT_HOST, dashboard_at, dashboard_options, serve_jobs
from ._exits import INTERRUPTED, leaves, process_ending
from ._jobs import cancel_job, list_jobs, purge_jobs, show_job
from ._load import TargetError
from ._node import NODE_HELP, node_options, node_run
from ._output import one_line
from ._run import run_topology
from ._tasklists import executor_option, graph, is_task_list, run_task_list

_RUN_HELP = """Run a topology or a task list.

TARGET is FILE.py[:FUNCTION] or MODULE[:FUNCTION]: an async function
(default: main) that receives an open actor system. While it runs, a live
view shows the actor tree, tasks, jobs with their progress, restarts and
dead letters; a summary follows. With --plain (the default when stdout is
not a terminal) notable events are printed as log lines instead.

TARGET may also be a task list (.xml, .json, .toml): it is loaded, --entry
is executed, and each task's final state is printed.

\b
examples:
  troupe run examples/pipeline.py
  troupe run examples/showcase.py --jobs .troupe/jobs.sqlite
  troupe run examples/pipeline.py:main --plain --events
  troupe run examples/showcase.py --jobs .troupe/jobs.sqlite --dashboard 8000
  troupe run examples/hemi/page_load.xml --entry ExampleProcess \\
      --functions examples/hemi/page_load.py --return dom_event_window_load
  troupe run simulations.toml --functions simulations.py --executor dask
"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run `troupe COMMAND --help` for each command's options and examples.",
)
@click.version_option(package_name="trio-troupe", prog_name="troupe")
def cli() -> None:
    """Run troupe actor topologies and task lists; read job stores."""


@cli.command("run", help=_RUN_HELP)
@click.argument("target")
@click.option("--plain", is_flag=True, help="Log lines instead of the live view.")
@click.option(
    "--events",
    is_flag=True,
    help="Print every lifecycle event as a line (above the live view, or among --plain's lines).",
)
@click.option(
    "--jobs",
    "jobs_db",
    metavar="PATH",
    help="Keep the run's jobs in this SQLite job store (a topology that uses jobs needs one).",
)
@click.option(
    "--traceback", is_flag=True, help="Let an error of the topology, or of importing it, raise whole."
)
@click.option("--entry", metavar="ID", help="Task list: the task to execute after loading.")
@click.option(
    "--functions", metavar="MODULE", help="Task list: a module or .py file whose functions it names."
)
@click.option(
    "--return",
    "returns",
    multiple=True,
    metavar="NAME",
    help="Task list: return this named dependency (repeatable).",
)
@click.option("--trusted", is_flag=True, help="Task list: allow script actions (Python source you wrote).")
@click.option(
    "--executor",
    metavar="NAME[=ADDRESS]",
    help=(
        "Task list: where sync function and component bodies run by default: inline, thread, process, "
        "or dask (an embedded Dask cluster; dask=tcp://HOST:8786 for a running one)."
    ),
)
@dashboard_options
def run_command(
    target: str,
    plain: bool,
    events: bool,
    jobs_db: str | None,
    traceback: bool,
    entry: str | None,
    functions: str | None,
    returns: tuple[str, ...],
    trusted: bool,
    executor: str | None,
    dashboard: tuple[str, int] | None,
    dashboard_token: str | None,
) -> int:
    at = dashboard_at(dashboard, dashboard_token)
    if is_task_list(target):
        if at is not None:
            raise TargetError(f"--dashboard is for topologies; {target} is a task list")
        run = functools.partial(
            run_task_list,
            target,
            entry=entry,
            functions=functions,
            returns=list(returns),
            trusted=trusted,
            executor=None if executor is None else executor_option(executor),
        )
        return _run(run, target)
    if executor is not None:
        raise TargetError(
            f"--executor is for task lists (.xml, .json, .toml); {target} is a topology: "
            'call troupe.use_executor("dask", troupe.DaskExecutor()) in it instead'
        )
    live = not plain and sys.stdout.isatty()
    go = functools.partial(
        run_topology, target, live=live, every=events, jobs=jobs_db, traceback=traceback, dashboard=at
    )
    return _run(go, target)


@cli.command("node", help=NODE_HELP)
@node_options
def node_command(target: str, **options: Any) -> int:
    return _run(node_run(target, **options), target)


def _run(run: Callable[[], Awaitable[int]], target: str) -> int:
    """``trio.run(run)``; Ctrl-C and sys.exit(), even inside exception groups, are exit statuses."""
    try:
        return trio.run(run)
    except BaseException as exc:
        ending = process_ending(exc, target)
        if ending is not None:
            return ending.report()
        gone = [e for e in leaves(exc) if isinstance(e, BrokenPipeError)]  # `troupe run ... | head`
        if gone:
            raise gone[0] from None  # bare, click ends quietly (exit 1), as for the other commands
        raise


@cli.command("graph")
@click.argument("file")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph_command(file: str, fmt: str) -> int:
    """Print a task list (.xml, .json, .toml) as a Mermaid flowchart or a Graphviz dot graph.

    \b
    examples:
      troupe graph examples/hemi/page_load.xml
      troupe graph examples/hemi/page_load.xml --format dot | dot -Tpng > tasks.png
    """
    print(graph(file, fmt), end="")
    return 0


_DB = click.option(
    "--db",
    required=True,
    metavar="PATH",
    help="The SQLite job store (never created; only cancel and purge write to it).",
)
_JSON = click.option(
    "--json", "as_json_", is_flag=True, help="Print JSON (JobRecord's field names) for scripts."
)


@cli.group("jobs")
def jobs_group() -> None:
    """Read a job store: list, show, cancel and purge jobs.

    \b
    examples:
      troupe jobs list --db .troupe/jobs.sqlite
      troupe jobs list --db .troupe/jobs.sqlite --status failed --json
      troupe jobs show 3f2a9c1e --db .troupe/jobs.sqlite
      troupe jobs cancel 3f2a9c1e --db .troupe/jobs.sqlite
      troupe jobs purge --db .troupe/jobs.sqlite --older-than 7d
      troupe jobs serve --db .troupe/jobs.sqlite --port 8001
    """


@jobs_group.command("list")
@_DB
@click.option(
    "--status",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus]),
    help="Only jobs with this status (repeatable).",
)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many, newest first.")
@_JSON
def jobs_list(db: str, status: tuple[str, ...], limit: int | None, as_json_: bool) -> int:
    """List the jobs, newest first.

    \b
    example:
      troupe jobs list --db .troupe/jobs.sqlite --status running --limit 20
    """
    return list_jobs(db, status=status, limit=limit, as_json_=as_json_)


@jobs_group.command("show")
@click.argument("job_id", metavar="ID")
@_DB
@_JSON
def jobs_show(job_id: str, db: str, as_json_: bool) -> int:
    """Show one job (ID: its id, or the start of it as `list` shows it).

    \b
    example:
      troupe jobs show 3f2a9c1e --db .troupe/jobs.sqlite --json
    """
    return show_job(db, job_id, as_json_=as_json_)


@jobs_group.command("cancel")
@click.argument("job_id", metavar="ID")
@_DB
@_JSON
def jobs_cancel(job_id: str, db: str, as_json_: bool) -> int:
    """Cancel a pending or running job: its process cancels it (exit 1 if it already finished).

    \b
    example:
      troupe jobs cancel 3f2a9c1e --db .troupe/jobs.sqlite
    """
    return cancel_job(db, job_id, as_json_=as_json_)


@jobs_group.command("purge")
@_DB
@click.option(
    "--older-than", metavar="AGE", help="Only jobs finished longer ago than this: 90, 30m, 12h, 7d, 2w."
)
@click.option("--id", "ids", multiple=True, metavar="ID", help="Only this job (repeatable).")
@_JSON
def jobs_purge(db: str, older_than: str | None, ids: tuple[str, ...], as_json_: bool) -> int:
    """Delete finished jobs' records (live ones are never purged).

    \b
    example:
      troupe jobs purge --db .troupe/jobs.sqlite --older-than 7d
    """
    return purge_jobs(db, older_than=older_than, ids=ids, as_json_=as_json_)


@jobs_group.command("serve")
@_DB
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="The address to listen on (0.0.0.0 opens it to the network).",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8000,
    show_default=True,
    help="The port; 0 picks a free one.",
)
@click.option(
    "--token", metavar="TOKEN", help="Allow cancel to requests bearing this token (else read-only)."
)
def jobs_serve(db: str, host: str, port: int, token: str | None) -> int:
    """Serve the store's jobs in the web dashboard and HTTP API until Ctrl-C.

    Read-only unless --token is given; then the page's cancel button (and
    POST /api/jobs/ID/cancel with "Authorization: Bearer TOKEN") flags the
    job for the process that runs it, as `troupe jobs cancel` does. Needs
    the web extra.

    \b
    examples:
      troupe jobs serve --db .troupe/jobs.sqlite
      troupe jobs serve --db .troupe/jobs.sqlite --port 0 --token s3cret
    """
    return serve_jobs(db, host=host, port=port, token=token)


cli.add_command(cluster_group)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``troupe`` command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="troupe", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # `troupe` alone: the help
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        return 0
    except click.ClickException as exc:
        print(f"troupe: {exc.format_message()}", file=sys.stderr)
        return 2
    except click.exceptions.Abort:  # Ctrl-C outside a run (click has turned it into Abort)
        return INTERRUPTED.report()
    except TroupeError as exc:
        print(f"troupe: {one_line(str(exc))}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
