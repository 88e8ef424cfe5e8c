"""``troupe cluster``: run a local NATS server for development; ``status`` (in `_node`) lists the members."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import click
import trio

from ..cluster._server import NatsServer, run_server
from ._exits import Ending
from ._node import status_command
from ._output import one_line

_DEFAULT_PORT = 4222
"""NATS's usual client port."""


@click.group("cluster")
def cluster_group() -> None:
    """Work with a troupe cluster on NATS.

    \b
    examples:
      troupe cluster serve
      troupe cluster serve --port 0 --token s3cret
      troupe cluster status --cluster nats://127.0.0.1:4222 --json
    """


cluster_group.add_command(status_command)


@cluster_group.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on (0.0.0.0 opens it to the network: give a --token).",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=_DEFAULT_PORT,
    show_default=True,
    help="The client port; 0 picks a free one.",
)
@click.option("--token", metavar="TOKEN", help="A token every client must present.")
def serve_command(host: str, port: int, token: str | None) -> int:
    """Run a local nats-server for development.

    It runs in the foreground until Ctrl-C, and prints the URL the nodes
    join with (`--cluster URL`).

    \b
    examples:
      troupe cluster serve
      troupe cluster serve --port 4333 --token s3cret
    """
    return trio.run(_serve, host, port or None, token)


async def _serve(host: str, port: int | None, token: str | None) -> int:
    # SIGHUP too: the server has a process group of its own, so a closing terminal's hang-up reaches
    # only troupe, which must stop it, or it would be left running
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with run_server(host=host, port=port, token=token) as server:
            print(f"nats-server listening on {server.url} (Ctrl-C stops it)", flush=True)
            status = await _until_signal_or_exit(server, signals)
            if status is not None:  # the run did not succeed: exit status 1, as `troupe run`'s
                line = (
                    f"nats-server on {server.url} exited by itself with status {status}; "
                    f"its last lines: {server._last_lines()}; run `troupe cluster serve` again"
                )
                return Ending(1, one_line(line)).report()
    return 0


async def _until_signal_or_exit(server: NatsServer, signals: AsyncIterator[int]) -> int | None:
    """None after Ctrl-C, SIGTERM or SIGHUP; the server's exit status if it ended first."""
    status: int | None = None

    async def on_signal(scope: trio.CancelScope) -> None:
        async for _ in signals:
            scope.cancel()
            return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signal, nursery.cancel_scope)
        status = await server._wait_exit()
        nursery.cancel_scope.cancel()
    return status
