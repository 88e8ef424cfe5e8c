"""The dashboard on the command line: ``--dashboard [HOST:]PORT`` and ``troupe jobs serve``.

``troupe run`` and ``troupe node`` serve their system's dashboard
(`troupe.web.serve`) right after the system opens; it stops with the
system. ``troupe jobs serve --db PATH`` serves a job store alone
(`troupe.web.serve_store`) until Ctrl-C. ``troupe.web`` is imported only
when asked for: the ``web`` extra is needed only then.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click
import trio

if TYPE_CHECKING:
    from ..actors import ActorSystem

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_HOST = "127.0.0.1"
"""Where the dashboard listens unless told: this machine only."""


@attrs.frozen
class DashboardAt:
    """Where ``--dashboard`` asked the dashboard to listen, and its token (None: one is made)."""

    host: str
    port: int
    token: str | None = None


def parse_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> (host, port); host 127.0.0.1 unless given.

    Raises:
        click.BadParameter: not one of those shapes, or a port outside 0..65535.
    """
    host, sep, port = text.strip().rpartition(":")
    if sep and host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs its brackets: [::1]:8000
    if (sep and not host) or not port.isdigit() or not 0 <= int(port) <= 65535:  # noqa: PLR2004
        msg = (
            f"{text!r} is not [HOST:]PORT: give a port (8000; 0 picks a free one), "
            "or an address and a port (127.0.0.1:8000, 0.0.0.0:8000, [::1]:8000)"
        )
        raise click.BadParameter(msg)
    return host or DEFAULT_HOST, int(port)


def _needs_web() -> None:
    """``troupe.web`` can be imported; else a usage error that says how to install it."""
    try:
        import troupe.web  # noqa: F401, PLC0415 - only when a dashboard is asked for
    except ImportError as exc:
        raise click.UsageError(str(exc)) from None


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:  # noqa: ARG001
    if value is None:
        return None
    found = parse_address(value)
    _needs_web()
    return found


DASHBOARD_OPTIONS = [
    click.option(
        "--dashboard",
        "dashboard",
        metavar="[HOST:]PORT",
        callback=_address,
        help=(
            "Serve the web dashboard and HTTP API here while the system runs "
            "(host 127.0.0.1 unless given; port 0 picks a free one). Needs the web extra."
        ),
    ),
    click.option(
        "--dashboard-token",
        metavar="TOKEN",
        help="The bearer token the dashboard's cancel needs (default: a new one, printed).",
    ),
]


def dashboard_options(f: F) -> F:
    """Add ``--dashboard`` and ``--dashboard-token`` to a command."""
    for option in reversed(DASHBOARD_OPTIONS):
        f = option(f)
    return f


def dashboard_at(address: tuple[str, int] | None, token: str | None) -> DashboardAt | None:
    """What the two options ask for; None without ``--dashboard`` (a lone token is a usage error)."""
    if address is None:
        if token is not None:
            msg = "--dashboard-token is the token of a dashboard: give --dashboard [HOST:]PORT too"
            raise click.UsageError(msg)
        return None
    return DashboardAt(address[0], address[1], token)


async def open_dashboard(system: ActorSystem, at: DashboardAt, *, live: bool) -> None:
    """Serve ``system``'s dashboard and print where, with its token (stderr above a live view).

    Raises:
        WebError: the port is taken, or a bad address or token.
    """
    from ..web import serve  # noqa: PLC0415 - the web extra, only when asked for

    dashboard = await serve(system, host=at.host, port=at.port, token=at.token)
    line = f"dashboard at {dashboard.url} (token {dashboard.token})"
    print(line, file=sys.stderr if live else sys.stdout, flush=True)


def serve_jobs(db: str, *, host: str, port: int, token: str | None) -> int:
    """``troupe jobs serve``: serve the store at ``db`` until Ctrl-C or SIGTERM; exit status 0."""
    _needs_web()
    return trio.run(_serve_jobs, db, host, port, token)


async def _serve_jobs(db: str, host: str, port: int, token: str | None) -> int:
    from ..web import serve_store  # noqa: PLC0415 - the web extra, only when asked for

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_store(db, host=host, port=port, token=token) as dashboard:
            how = "cancel needs the token" if token else "read-only: give --token TOKEN to allow cancel"
            print(f"jobs of {db} at {dashboard.url} ({how}; Ctrl-C stops it)", flush=True)
            async for _ in signals:
                break
    return 0
