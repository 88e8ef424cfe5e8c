"""The ask workload on Thespian's ``multiprocTCPBase``: every actor its own OS process, TCP between them.

No NATS: Thespian is its own transport. The asker is this process (the
ActorSystem's caller); the echo actor runs in a process Thespian forks, and
so does the system's admin, on ``admin_port``. The system is shut down in
every case, so no admin process is left; ``bench/cluster.py`` checks that
the port is closed afterwards. The report adds ``helpers_cpu``: the CPU
seconds of Thespian's processes, which the orchestrator cannot see.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

from thespian.actors import Actor, ActorAddress, ActorSystem

from .common import PAYLOAD, WARM_UP, kin_cpu_seconds, now, report


class Echo(Actor):  # type: ignore[misc] # thespian ships no type information
    """Answers every bytes message with the count of those it has answered, this one included."""

    seen = 0

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:  # noqa: N802 - Thespian's name
        """Answer a request; ignore Thespian's own messages."""
        if isinstance(message, bytes):
            self.seen += 1
            self.send(sender, self.seen)


def _terminated(*_: object) -> NoReturn:
    sys.exit(1)  # through the finally below: the actor system is shut down


def asker(admin_port: int, n: int) -> None:
    """One warm-up ask, then ``n`` asks one after the other; reports like a requester."""
    signal.signal(signal.SIGTERM, _terminated)
    system = ActorSystem("multiprocTCPBase", capabilities={"Admin Port": admin_port})
    try:
        echo = system.createActor(Echo)
        first = 0
        for _ in range(WARM_UP):
            first = system.ask(echo, PAYLOAD, 10)
        last = first
        start = now()
        for i in range(n):
            last = system.ask(echo, PAYLOAD, 10)
            if last is None:
                msg = f"Thespian ask: no answer within 10 s after {i} answers; is the echo actor alive?"
                raise RuntimeError(msg)
        end = now()
        report(start=start, end=end, count=last - first, helpers_cpu=kin_cpu_seconds())
    finally:
        system.shutdown()
