"""Run one role: ``python -m clusterkit MODULE FUNCTION JSON``.

Calls ``clusterkit.MODULE.FUNCTION(**json.loads(JSON))``; the orchestrator's
[`children`][clusterkit.children] builds these command lines. A role
imports its peer (nats-py, Thespian) only when it runs.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str]) -> int:
    """Run the role ``argv`` names; exit status 2 for a wrong command line."""
    if len(argv) != 3:
        print("usage: python -m clusterkit MODULE FUNCTION JSON-KWARGS", file=sys.stderr)
        return 2
    module, function, kwargs = argv
    role = getattr(importlib.import_module(f"clusterkit.{module}"), function)
    role(**json.loads(kwargs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
