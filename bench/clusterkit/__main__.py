"""Run one role: ``python -m clusterkit MODULE FUNCTION JSON``.

Calls ``clusterkit.MODULE.FUNCTION(**json.loads(JSON))``; the orchestrator's
[`children`][clusterkit.children] builds these command lines. A role that
is an ``async def`` runs in ``trio.run``, or in ``asyncio.run`` when its
module sets ``LOOP = "asyncio"``. A role imports its peer (nats-py,
Thespian) only when it runs.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
from functools import partial

import trio


def main(argv: list[str]) -> int:
    """Run the role ``argv`` names; exit status 2 for a wrong command line."""
    if len(argv) != 3:
        print("usage: python -m clusterkit MODULE FUNCTION JSON-KWARGS", file=sys.stderr)
        return 2
    name, function, kwargs = argv
    module = importlib.import_module(f"clusterkit.{name}")
    role = getattr(module, function)
    arguments = json.loads(kwargs)
    if not inspect.iscoroutinefunction(role):
        role(**arguments)
    elif getattr(module, "LOOP", "trio") == "asyncio":
        asyncio.run(role(**arguments))
    else:
        trio.run(partial(role, **arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
