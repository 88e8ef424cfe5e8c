"""The same workloads written for troupe and for each peer, side by side.

One module per contender, each with the same four functions:

- ``tell(n)``: ``n`` one-way messages into one actor, sent without waiting
  for each; the clock stops when the actor has counted all ``n``.
- ``ask(n)``: ``n`` request/response round trips, one after the other.
- ``spawn(n)``: ``n`` idle actors started (the clock stops when all are up),
  memory per actor from the process's peak RSS, then a clean shutdown.
- ``fanout(n, workers)``: a client sends ``n`` requests round-robin over a
  pool of ``workers`` and waits for all ``n`` answers.

Each returns a [`Run`][peerkit.common.Run] whose ``count`` is what the
actors themselves counted, so a run that lost a message cannot pass for a
fast one. Peers are imported only when asked for: they come from the
``bench`` extra, never from the library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CONTENDERS = ("troupe", "trio", "asyncio", "pykka", "thespian")
"""Every contender, troupe first (the ratios are to troupe)."""

WORKLOADS = ("tell", "ask", "spawn", "fanout")


def contender(name: str) -> ModuleType:
    """The module that runs the workloads on ``name``."""
    if name not in CONTENDERS:
        msg = f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}"
        raise ValueError(msg)
    return importlib.import_module(f"peerkit.on_{name}")
