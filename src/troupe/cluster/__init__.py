"""A troupe cluster on NATS: remote refs, a cluster-wide registry, watch across nodes.

Join with ``troupe.open_system(cluster=troupe.Cluster(...))``; ``system.cluster``
is then the [`ClusterHandle`][troupe.cluster.ClusterHandle]. See the Cluster guide.
"""

from ._config import Cluster
from ._errors import ClusterError, RemoteError
from ._handle import ClusterHandle, ClusterStatistics, open_system
from ._members import ClusterMember
from ._remote import RemoteRef
from ._server import NatsServer, run_server
from ._wire import UnreadableMessage

__all__ = [
    "Cluster",
    "ClusterError",
    "ClusterHandle",
    "ClusterMember",
    "ClusterStatistics",
    "NatsServer",
    "RemoteError",
    "RemoteRef",
    "UnreadableMessage",
    "open_system",
    "run_server",
]
