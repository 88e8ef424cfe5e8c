"""The cluster's errors: the cluster itself failing, and errors raised on another node."""

from __future__ import annotations

from ..protocol import TroupeError


class ClusterError(TroupeError):
    """The cluster could not do what was asked: not connected, refused, too large...

    The message names the server or node and what to do. Raised at once
    (never after a timeout) while the connection to the server is down;
    troupe reconnects in the background, and calls succeed again once it has.
    """


class RemoteError(TroupeError):
    """An exception raised on another node, carried back as text.

    The ``__cause__`` of an [`ActorCrashed`][troupe.ActorCrashed] from a
    remote ask whose ``receive`` raised. Nothing from the wire is ever
    unpickled: the original exception stays on its node; this carries its
    type name, message and traceback text.
    """

    def __init__(self, type_name: str, text: str, traceback: str, node: str) -> None:
        self.type_name = type_name
        """The remote exception's qualified type name, like ``ValueError``."""
        self.text = text
        """``str()`` of the remote exception."""
        self.traceback = traceback
        """The remote traceback, formatted as Python prints it."""
        self.node = node
        """The name of the node it was raised on."""
        super().__init__(f"{type_name}: {text} (raised on node {node!r}; .traceback has its traceback)")
