"""Systems joined to one cluster in this process: the set-up the cluster's tests share.

Every node gets a quick failure detector (heartbeats every 0.2 s, lost
after 1 s), so that tests of loss finish in about a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import troupe


def config(cluster: str, url: str | None, node: str, **kw: Any) -> troupe.Cluster:
    """A member ``node`` of ``cluster`` at ``url`` (None: start the embedded server)."""
    return troupe.Cluster(url=url, node=node, name=cluster, heartbeat=0.2, failure_timeout=1.0, **kw)


@asynccontextmanager
async def two_nodes(cluster: str, **kw: Any) -> AsyncIterator[tuple[troupe.ActorSystem, troupe.ActorSystem]]:
    """Node a (with the embedded server) and node b, joined to it; ``kw`` goes to both configs."""
    async with (
        troupe.open_system(name="a", cluster=config(cluster, None, "a", **kw)) as a,
        troupe.open_system(name="b", cluster=config(cluster, a.cluster.url, "b", **kw)) as b,
    ):
        yield a, b


async def registered(
    system: troupe.ActorSystem,
    factory: Callable[[], troupe.Actor[Any]],
    as_name: str,
    name: str | None = None,
    **kw: Any,
) -> troupe.ActorRef[Any]:
    """An actor spawned on ``system`` (``name`` and ``kw`` as for spawn), registered as ``as_name``."""
    ref = await system.spawn(factory, name=name, **kw)
    await system.cluster.register(as_name, ref)
    return ref
