"""``Cluster``: how a system joins a troupe cluster."""

from __future__ import annotations

import math
import os
import re
import socket
import ssl
from typing import Any, final

import attrs

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _check_token(what: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and attribute.name == "node":
            return
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            msg = (
                f"Cluster {attribute.name} must be {what} of letters, digits, '_' and '-' "
                f"(it becomes part of NATS subjects), got {value!r}"
            )
            raise ValueError(msg)

    return check


def _check_seconds(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        msg = f"Cluster {attribute.name} is a number of seconds > 0, got {value!r}"
        raise ValueError(msg)


def _check_size(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:  # noqa: PLR2004 - a sane floor
        msg = f"Cluster {attribute.name} is a number of bytes >= 1024, got {value!r}"
        raise ValueError(msg)


def default_node_name() -> str:
    """``host-pid``: unique enough among the processes of a cluster."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "node"
    return f"{host}-{os.getpid()}"


@final
@attrs.frozen
class Cluster:
    """How a system joins a troupe cluster: pass it to ``troupe.open_system(cluster=...)``.

    Without ``url`` the system starts a private ``nats-server`` (from the
    ``cluster`` extra) on 127.0.0.1 and a free port, for its lifetime: one
    process can use the whole cluster API with no set-up, and other
    processes can join it at ``system.cluster.url``.

    Example:
        ```python
        config = troupe.Cluster(url="nats://127.0.0.1:4222", node="worker-1", name="shop")
        async with troupe.open_system(cluster=config) as system:
            await system.cluster.register("orders", await system.spawn(Orders))
        ```
    """

    url: str | None = None
    """The NATS server, ``nats://host:port`` (``tls://`` for TLS; credentials may
    sit in it: ``nats://TOKEN@host:port``, ``nats://user:pass@host:port``).
    None: start a private server for the system's lifetime."""
    node: str | None = attrs.field(default=None, validator=_check_token("a name"))
    """This node's name, as other nodes see it; default ``hostname-pid``."""
    name: str = attrs.field(default="troupe", validator=_check_token("a name"))
    """The cluster's name. Clusters of different names share a server without
    seeing each other."""
    token: str | None = attrs.field(default=None, repr=False)
    """The server's authorization token, if it needs one."""
    user: str | None = None
    """The user name, if the server needs one."""
    password: str | None = attrs.field(default=None, repr=False)
    """The user's password."""
    tls: ssl.SSLContext | None = None
    """A TLS context (for a server that requires TLS, or client certificates);
    ``tls://`` URLs use the default context when None."""
    heartbeat: float = attrs.field(default=1.0, validator=_check_seconds)
    """Seconds between this node's heartbeats."""
    failure_timeout: float = attrs.field(default=4.0, validator=_check_seconds)
    """A node silent this long is lost: its actors' watchers get ``Terminated``.
    Loss is detected within ``failure_timeout + heartbeat / 4`` (4.25 s by default)."""
    max_payload: int = attrs.field(default=1024 * 1024, validator=_check_size)
    """The largest message (encoded, in bytes) this node accepts; larger ones
    become dead letters on arrival. Sending is bounded by the server's own
    limit, also 1 MB by default."""
    connect_timeout: float = attrs.field(default=5.0, validator=_check_seconds)
    """Seconds to reach the server when joining."""

    def __attrs_post_init__(self) -> None:
        if self.failure_timeout <= self.heartbeat:
            msg = (
                f"Cluster failure_timeout ({self.failure_timeout} s) must be longer than heartbeat "
                f"({self.heartbeat} s), or every node would be lost between two heartbeats"
            )
            raise ValueError(msg)
