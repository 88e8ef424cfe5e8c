"""Errors of the task layer.

Their place in the tree:

```text
TroupeError
├── TaskFailed            result() of a task whose body raised
├── TaskCancelled         a task ended by cancel(), cancel(force=True) or its system's shutdown
├── NotWaitable           waiting on an async (fire-and-forget) task
├── TaskStateError        an operation the task's state does not allow
├── ChannelClosed         a task channel whose task ended (or end closed)
├── TaskServiceError      a task service refused a call (unknown id, bad type...)
└── TaskListError         a task list (XML, JSON, TOML) is malformed or unsafe
```
"""

from __future__ import annotations

from ..protocol import TroupeError


class TaskFailed(TroupeError):
    """The task's body raised; ``__cause__`` is the original exception."""

    def __init__(self, name: str, cause: BaseException) -> None:
        self.name = name
        """The task's name."""
        super().__init__(
            f"task {name} failed with {type(cause).__name__}: {cause} "
            "(see __cause__ for the traceback; error() returns it without raising)"
        )


class TaskCancelled(TroupeError):
    """The task was cancelled: forced, ended cooperatively, or cut off by its system's shutdown.

    Example:
        ```python
        await t.cancel(force=True)
        error = await t.error()
        assert isinstance(error, troupe.TaskCancelled) and error.forced
        ```
    """

    def __init__(self, name: str, *, forced: bool, shutdown: bool = False) -> None:
        self.name = name
        """The task's name."""
        self.forced = forced or shutdown
        """True unless the task ended cooperatively: after ``cancel(force=True)`` or a shutdown."""
        self.shutdown = shutdown
        """True when the task's system shut down before it finished (it ran, waited, or was never started)."""
        if shutdown:
            how = "because its system shut down before it finished"
        elif forced:
            how = "by cancel(force=True)"
        else:
            how = "cooperatively (on_cancellation, or SIGTERM for a command)"
        super().__init__(f"task {name} was cancelled {how}; it has no result")


class NotWaitable(TroupeError):
    """An async (fire-and-forget) task cannot be waited on."""

    def __init__(self, name: str) -> None:
        self.name = name
        """The task's name."""
        super().__init__(
            f"task {name} is async (fire-and-forget) and cannot be waited on; "
            "use run_task instead of run_async_task if you need its outcome"
        )


class TaskStateError(TroupeError):
    """The task is in a state that does not allow this operation."""


class ChannelClosed(TroupeError):
    """A task channel is closed: the task ended, or the other end closed its side.

    Raised by a write after the close, and by a read once the closed
    channel is drained (what was written before the close stays readable).
    """


class TaskServiceError(TroupeError):
    """A task service refused a call: an unknown or removed id, a duplicate id, a bad type.

    Nothing changed in the service when it is raised. An unexpected error
    inside the service while it applied a call is also a `TaskServiceError`,
    with the original as ``__cause__``; the service keeps running (a
    ``load`` that failed that way left nothing behind).
    """


class TaskListError(TroupeError, ValueError):
    """A task list could not be loaded; nothing of it was added to the service.

    The message names the file and line and says what to change.
    """

    def __init__(self, what: str, *, file: str = "<string>", line: int | None = None) -> None:
        self.file = file
        """The path of the task list, or ``"<string>"`` for a document given as text."""
        self.line = line
        """The line the problem is on (always known for XML and syntax errors), else None."""
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {what}")
