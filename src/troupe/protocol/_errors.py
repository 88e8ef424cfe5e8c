"""The root of troupe's errors, and the errors of the protocol layer.

The whole tree (each layer keeps its own module):

```text
TroupeError
├── DecodeError (also ValueError)          troupe.protocol
├── MessageTypeError (also TypeError)       troupe.actors
├── NameTaken (also ValueError)             troupe.actors
├── SpawnError                              troupe.actors
├── MailboxFull                             troupe.actors
├── AskTimeout (also TimeoutError)          troupe.actors
├── ActorCrashed                            troupe.actors
├── ActorStopped                            troupe.actors
├── ActorFailed                             troupe.actors
├── JobStoreError                           troupe.actors (also in troupe.jobs)
├── ClusterError                            troupe.cluster
└── RemoteError                             troupe.cluster
```
"""

from __future__ import annotations


class TroupeError(Exception):
    """Base class of every error troupe raises on purpose.

    Catch it to handle any troupe failure at once.

    Example:
        ```python
        try:
            await ref.ask(Ping())
        except troupe.TroupeError as exc:
            print("troupe said:", exc)
        ```
    """


class DecodeError(TroupeError, ValueError):
    """Wire data could not be turned back into a message.

    Attributes:
        path: where in the data the problem is, like ``$.items[2].by``.
        reason: what is wrong there.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        """Where in the data the problem is (``$`` is the whole document)."""
        self.reason = reason
        """What is wrong at ``path``."""
        super().__init__(
            f"cannot decode message: {reason} at {path}; fix the data or the message class so they agree"
        )
