"""What the cross-process tests (tests/cluster/test_processes.py) and their node scripts share.

The scripts of this folder import it as ``messages`` (their own folder is
first on ``sys.path``); the test puts this folder on ``sys.path`` and
imports the same module, so both sides build the same ``@message`` classes.
"""

from __future__ import annotations

from typing import Any

import troupe

CLUSTER = "procs"
"""The cluster every node of these tests joins."""
HEARTBEAT = 0.2
"""Seconds between heartbeats, on every node."""
FAILURE_TIMEOUT = 1.0
"""Seconds of silence after which a node is lost, on every node."""


def config(url: str, node: str, **options: Any) -> troupe.Cluster:
    """The cluster configuration of one node of these tests."""
    return troupe.Cluster(
        url=url, node=node, name=CLUSTER, heartbeat=HEARTBEAT, failure_timeout=FAILURE_TIMEOUT, **options
    )


@troupe.message(name="test.processes.Add")
class Add:
    """Add ``n`` to the counter's total."""

    n: int


@troupe.message(name="test.processes.Get")
class Get:
    """Ask the counter for ``{"total": ..., "adds": ..., "seqs": ...}``."""


@troupe.message(name="test.processes.Seq")
class Seq:
    """Number ``i`` of a stream: the counter keeps every number, in the order it got them."""

    i: int


@troupe.message(name="test.processes.Received")
class Received:
    """Ask the counter (on its own node) for the list of the numbers it got."""


@troupe.message(name="test.processes.Pong")
class Pong:
    """The counter's answer to a `Ping`: which node answered, and the ref it answered through."""

    n: int
    node: str
    via: str


@troupe.message(name="test.processes.Ping")
class Ping:
    """Ask the counter to tell a `Pong` to ``reply_to`` (an actor of the sender's node)."""

    n: int
    reply_to: troupe.Ref[Pong]


@troupe.message(name="test.processes.Echo")
class Echo:
    """Ask the echo actor for ``"TEXT from NODE"``; ``"crash"`` makes it raise ValueError."""

    text: str
