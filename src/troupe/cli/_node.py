"""``troupe node`` and ``troupe cluster status``: the command line of a troupe cluster.

``troupe node FILE[:FUNCTION] --cluster URL --node NAME`` is ``troupe run``
in a system that has joined a cluster: the same code (`run_topology`) runs
the topology, draws the live view or prints the lines, ends the run and
reports how it ended; the view and the lines also show the cluster.
SIGTERM stops a node as Ctrl-C does.

``troupe cluster status --cluster URL`` joins as a short-lived observer
node, ``status-PID``, collects the other nodes' answers to its hello, and
prints them.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import click
import trio
from rich.table import Table
from rich.text import Text

from ..cluster import Cluster, ClusterMember, open_system
from ._dashboard import DASHBOARD_OPTIONS, dashboard_at
from ._output import console
from ._run import run_topology

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_ENV = "TROUPE_CLUSTER_TOKEN"  # noqa: S105 - a variable's name, not a token
"""The environment variable ``--token`` is read from when not given."""
STATUS_WAIT = 1.5
"""``troupe cluster status``'s default ``--wait``: a heartbeat period (1 s by default) and a margin."""
STATUS_QUIET = 0.25
"""Once a node has answered, ``troupe cluster status`` stops after this long without another."""

NODE_HELP = """Run a topology as a node of a troupe cluster on NATS.

TARGET is FILE.py[:FUNCTION] or MODULE[:FUNCTION], as for `troupe run`: an
async function (default: main) that receives an open actor system, one
that has joined the cluster at --cluster as node --node (system.cluster).
A worker's main usually registers its actors, then awaits
trio.sleep_forever(). The live view (or --plain's lines) shows what
`troupe run` shows, and the cluster: this node, the connection, and the
live nodes with the names they registered.

It runs until main returns, or until Ctrl-C or SIGTERM (exit status 130);
either way it leaves the cluster cleanly. If it cannot join (the server is
unreachable, refuses the token, a bad URL or name), it says why in one line
and exits 2. Exit statuses are otherwise those of `troupe run`.

\b
examples:
  troupe cluster serve
  troupe node examples/cluster/worker.py --cluster nats://127.0.0.1:4222 --node worker-1
  TROUPE_CLUSTER_TOKEN=s3cret troupe node worker.py --cluster nats://10.0.0.5:4222 \\
      --node worker-2 --name shop --plain
"""


_URL = click.option(
    "--cluster",
    "url",
    required=True,
    metavar="URL",
    help="The NATS server: nats://host:port (tls://host:port for TLS).",
)
_CLUSTER_NAME = click.option(
    "--name",
    "cluster_name",
    default="troupe",
    show_default=True,
    metavar="CLUSTER",
    help="The cluster's name (clusters of different names share a server without seeing each other).",
)
_TOKEN = click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    metavar="TOKEN",
    help="The server's token, if it needs one (better from the environment: never printed).",
)


def node_options(f: F) -> F:
    """The options of ``troupe node`` (its TARGET argument too), for ``_main`` to register it with."""
    seconds = click.FloatRange(min=0, min_open=True)
    for option in reversed(
        [
            click.argument("target"),
            _URL,
            click.option(
                "--node",
                "node",
                required=True,
                metavar="NAME",
                help="This node's name in the cluster (letters, digits, '_' and '-').",
            ),
            _CLUSTER_NAME,
            _TOKEN,
            click.option("--plain", is_flag=True, help="Log lines instead of the live view."),
            click.option(
                "--events",
                is_flag=True,
                help="Print every lifecycle event as a line (above the live view, or among --plain's lines).",
            ),
            click.option(
                "--jobs",
                "jobs_db",
                metavar="PATH",
                help="Keep the run's jobs in this SQLite job store (a topology that uses jobs needs one).",
            ),
            click.option(
                "--heartbeat",
                type=seconds,
                default=1.0,
                show_default=True,
                metavar="S",
                help="Seconds between this node's heartbeats.",
            ),
            click.option(
                "--failure-timeout",
                type=seconds,
                default=4.0,
                show_default=True,
                metavar="S",
                help="A node silent this long is lost (its actors' watchers get Terminated).",
            ),
            click.option(
                "--traceback",
                is_flag=True,
                help="Let an error of the topology, or of importing it, raise whole.",
            ),
            *DASHBOARD_OPTIONS,
        ]
    ):
        f = option(f)
    return f


def _config(url: str, node: str, name: str, token: str | None, **kw: Any) -> Cluster:
    """The `Cluster` the options describe; a bad name or timing is a usage error (one line, exit 2)."""
    try:
        return Cluster(url=url, node=node, name=name, token=token or None, **kw)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def node_run(
    target: str,
    *,
    url: str,
    node: str,
    cluster_name: str,
    token: str | None,
    plain: bool,
    events: bool,
    jobs_db: str | None,
    heartbeat: float,
    failure_timeout: float,
    traceback: bool,
    dashboard: tuple[str, int] | None = None,
    dashboard_token: str | None = None,
) -> Callable[[], Awaitable[int]]:
    """What ``troupe node`` runs in trio: ``target`` as ``troupe run`` runs it, in a system that joined.

    Raises:
        click.UsageError: the options do not make a `Cluster` (checked
            before anything is imported or joined).
    """
    config = _config(url, node, cluster_name, token, heartbeat=heartbeat, failure_timeout=failure_timeout)
    live = not plain and sys.stdout.isatty()
    run = functools.partial(
        run_topology,
        target,
        live=live,
        every=events,
        jobs=jobs_db,
        traceback=traceback,
        cluster=config,
        dashboard=dashboard_at(dashboard, dashboard_token),
    )
    return functools.partial(_until_sigterm, run)


async def _until_sigterm(run: Callable[[], Awaitable[int]]) -> int:
    with _sigterm_as_ctrl_c():
        return await run()


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (from ``kill``, systemd, a container's stop) stops the node as Ctrl-C does.

    Its handler raises SIGINT, which the run takes as Ctrl-C (see
    `troupe.cli._interrupt`): the topology is stopped, the node leaves the
    cluster, exit status 130.
    """
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - signal's signature
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("status")
@_URL
@_CLUSTER_NAME
@_TOKEN
@click.option("--json", "as_json_", is_flag=True, help='Print JSON: a list of {"node", "node_id", "names"}.')
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=STATUS_WAIT,
    show_default=True,
    metavar="S",
    help="Wait at most this long for the nodes to answer.",
)
def status_command(url: str, cluster_name: str, token: str | None, as_json_: bool, wait: float) -> int:
    """List the live nodes of a cluster and the names each registered.

    It joins as a short-lived node, status-PID, whose hello every node
    answers at once with its heartbeat. It stops 0.25 s after the last
    answer came in, or after --wait seconds if none came (nodes also send a
    heartbeat every second by default). Its own node is not listed; no node
    at all is said so, with exit status 0. If it cannot join, it says why
    in one line and exits 2.

    \b
    examples:
      troupe cluster status --cluster nats://127.0.0.1:4222
      troupe cluster status --cluster nats://10.0.0.5:4222 --name shop --json
    """
    config = _config(url, f"status-{os.getpid()}", cluster_name, token)
    members = trio.run(_members, config, wait)
    if as_json_:
        data = [{"node": m.node, "node_id": m.node_id, "names": list(m.names)} for m in members]
        print(json.dumps(data, indent=2))
        return 0
    where = f"cluster {config.name} at {_shown_url(url)}"
    out = console()
    if not members:
        out.print(f"no node in {where}", markup=False, soft_wrap=True)
        return 0
    count = len(members)
    out.print(f"{where}: {count} node{'' if count == 1 else 's'}", markup=False, soft_wrap=True)
    table = Table(box=None, pad_edge=False, header_style="bold underline")
    table.add_column("node", no_wrap=True)
    table.add_column("node id", no_wrap=True)
    table.add_column("names")
    for m in members:
        table.add_row(Text(m.node), Text(m.node_id), Text(", ".join(m.names) if m.names else "-"))
    out.print(table)
    return 0


async def _members(config: Cluster, wait: float) -> list[ClusterMember]:
    """The other live nodes of ``config``'s cluster, as they answer this node's hello."""
    async with open_system(name="troupe cluster status", cluster=config) as system:
        handle = system.cluster
        nodes = 1  # this one
        with trio.move_on_after(wait):
            while True:
                quiet = math.inf if nodes == 1 else STATUS_QUIET
                with trio.move_on_after(quiet) as waiting:
                    nodes = len(await handle.wait_for_nodes(nodes + 1, timeout=math.inf))
                if waiting.cancelled_caught:
                    break
        found = await handle.members()
        return [m for m in found if m.node_id != handle.node_id]


def _shown_url(url: str) -> str:
    """``url`` without the credentials it may hold (``nats://TOKEN@host:port``)."""
    scheme, sep, rest = url.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"
