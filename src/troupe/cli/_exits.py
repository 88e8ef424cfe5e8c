"""How a ``troupe run`` ends: an exit status and at most one line on stderr.

Ctrl-C and ``sys.exit()`` reach the command line as `KeyboardInterrupt`
and `SystemExit`, often inside the exception group of a nursery (the
topology's own, or the system's): each is found wherever it is.
"""

from __future__ import annotations

import sys

import attrs
import trio

from ..jobs import JobStoreError
from ._output import one_line

INTERRUPTED_STATUS = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells use."""


@attrs.frozen
class Ending:
    """How a run ended."""

    status: int
    """The exit status."""
    line: str | None = None
    """What to print on stderr (after ``troupe: ``), if anything."""
    phase: str = "stopped"
    """The live view's last word in its title."""

    def report(self) -> int:
        """Print the line, if any; return the exit status."""
        if self.line is not None:
            print(f"troupe: {self.line}", file=sys.stderr, flush=True)
        return self.status


DONE = Ending(0)
INTERRUPTED = Ending(INTERRUPTED_STATUS, "interrupted", "interrupted")


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in ``exc``: itself, or those its (nested) groups hold."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def _exited(code: object, who: str) -> Ending:
    """``sys.exit(code)``, as Python itself would end: an int is the status, anything else is printed."""
    if code is None:
        return DONE
    if isinstance(code, int):
        status = code & 0xFF  # what the operating system keeps of it: sys.exit(-1) is 255
        return Ending(status, f"{who} exited with status {status}", f"exited {status}") if status else DONE
    return Ending(1, f"{who} exited: {one_line(str(code))}", "exited 1")


def process_ending(exc: BaseException, who: str) -> Ending | None:
    """Ctrl-C or ``sys.exit()`` anywhere in ``exc``; None if neither is there."""
    found = leaves(exc)
    if any(isinstance(e, KeyboardInterrupt) for e in found):
        return INTERRUPTED
    exits = [e for e in found if isinstance(e, SystemExit)]
    return _exited(exits[0].code, who) if exits else None


def topology_ending(exc: BaseException, target: str, *, has_store: bool, traceback: bool) -> Ending | None:
    """What the topology's ``exc`` means for the run; None if it must go on up.

    A cancellation goes on up (the system's own: it ends the run its way), and
    so does an error with ``--traceback``.
    """
    found = leaves(exc)
    if any(isinstance(e, trio.Cancelled) for e in found):
        return None
    ending = process_ending(exc, target)
    if ending is not None:
        return ending
    if traceback or not all(isinstance(e, Exception) for e in found):
        return None
    first = found[0]
    if isinstance(first, JobStoreError) and not has_store:
        line = (
            f"{target} needs a job store: run it with --jobs PATH, "
            f"as in `troupe run {target} --jobs .troupe/jobs.sqlite`"
        )
        return Ending(2, line, "failed")
    more = f" (and {len(found) - 1} more errors)" if len(found) > 1 else ""
    line = (
        f"{target} raised {type(first).__name__}: {one_line(str(first))}{more} "
        "(run with --traceback for the traceback)"
    )
    return Ending(1, line, "failed")
