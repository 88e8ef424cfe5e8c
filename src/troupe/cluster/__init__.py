"""A troupe cluster on NATS: remote refs, a cluster-wide registry, watch across nodes."""

from __future__ import annotations

from ._errors import ClusterError, RemoteError

__all__ = ["ClusterError", "RemoteError"]
