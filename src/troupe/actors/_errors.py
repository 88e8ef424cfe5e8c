"""Errors of the actor runtime (see `troupe.TroupeError` for the tree)."""

from __future__ import annotations

from ..protocol import TroupeError


class MessageTypeError(TroupeError, TypeError):
    """A message of a type the actor does not accept; nothing was queued.

    Raised at the sender by `tell`, `tell_nowait`, `ask`, timers and event
    subscriptions.
    """

    def __init__(self, path: str, message: object, accepts: str) -> None:
        self.path = path
        """The path of the actor that would have received it."""
        self.message = message
        """The rejected message."""
        self.accepts = accepts
        """What the actor accepts, in words (``Order | GetStatus``)."""
        super().__init__(
            f"{path} accepts {accepts}, not {type(message).__qualname__} "
            f"({message!r}); nothing was sent: send one of the accepted types "
            "or widen the actor's Actor[...] parameter"
        )


class NameTaken(TroupeError, ValueError):
    """A sibling with this name is alive; names are unique among siblings."""

    def __init__(self, path: str) -> None:
        self.path = path
        """The path that is taken."""
        super().__init__(
            f"an actor named {path!r} is already running; choose another name, "
            "or await the old actor's stop() first"
        )


class SpawnError(TroupeError):
    """An actor's ``on_start`` raised at spawn; nothing was left running.

    The original exception is ``__cause__``.
    """

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        """The path the actor would have had."""
        super().__init__(
            f"{path} failed to start: on_start raised {type(cause).__name__}: {cause}; "
            "nothing was left running (see __cause__ for the traceback)"
        )


class MailboxFull(TroupeError):
    """A mailbox had no room.

    Raised by ``tell_nowait`` under overflow ``BLOCK``, and given to an ask
    whose queued message ``DROP_OLD`` or ``DROP_NEW`` dropped.
    """

    def __init__(self, path: str, capacity: int) -> None:
        self.path = path
        """The path of the actor whose mailbox is full."""
        self.capacity = capacity
        """That mailbox's capacity."""
        super().__init__(
            f"mailbox of {path} is full ({capacity} queued); use `await tell()` to "
            "wait for room, or give it a larger Mailbox(capacity=...) or another overflow policy"
        )


class AskTimeout(TroupeError, TimeoutError):
    """An ask got no answer within its timeout."""

    def __init__(self, path: str, message: object, timeout: float) -> None:
        self.path = path
        """The path of the actor that was asked."""
        self.message = message
        """The message that was asked."""
        self.timeout = timeout
        """The timeout in seconds."""
        super().__init__(
            f"{path} did not answer {type(message).__qualname__} within {timeout} s; "
            "the actor may be busy or stuck: raise the timeout, or check its receive()"
        )


class ActorCrashed(TroupeError):
    """The actor's ``receive`` raised while handling this ask.

    The original exception is ``__cause__``; the actor's supervisor handles
    the failure. Also given to an ask the actor could not answer because
    its supervisor restarted it with its group (then without a cause).
    """

    def __init__(self, path: str, cause: BaseException | None) -> None:
        self.path = path
        """The path of the actor that crashed."""
        if cause is None:
            super().__init__(
                f"{path} was restarted (with its supervisor's group) before answering; "
                "ask again once it has restarted"
            )
            return
        super().__init__(
            f"{path} crashed with {type(cause).__name__}: {cause} before answering; its supervisor "
            "handles it (see __cause__ for the traceback)"
        )


class ActorStopped(TroupeError):
    """The actor stopped, or had stopped, before it could answer.

    Also raised when spawning under an actor (or a system) that is stopping.
    """

    def __init__(self, path: str, detail: str | None = None) -> None:
        self.path = path
        """The path of the actor."""
        super().__init__(
            detail
            or (
                f"{path} is stopped and cannot answer; the message went to dead letters. "
                "Watch the actor to learn when it stops, and spawn a new one if you need it"
            )
        )


class ActorFailed(TroupeError):
    """A failure went over the root supervisor's restart limit.

    Raised by `open_system`; ``__cause__`` is the original exception, at
    whatever depth it happened.
    """

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        """The path of the root's child whose failure went over the limit."""
        super().__init__(
            f"{path} failed with {type(cause).__name__}: {cause}, more often than its "
            "supervisor allows; the system was shut down (see __cause__ for the traceback)"
        )


class JobStoreError(TroupeError):
    """A job store could not be opened, read or written; or there is none.

    The message names the store (``location``) and what to do. Records
    already stored are never touched by the failing operation.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        """The store's file (or other location), when there is one."""
        super().__init__(message)
