"""What the fault suite (``tests/faults/``) shares: its budget and the figures it prints.

Every fault test runs twice over: with a fixed seed and a small budget in
``make test`` (CI), and with a random seed and a large budget under
``pytest --soak`` (``make soak``). Each test reports what it ran with
`report` (examples, operations, messages, and what was lost, which must be
0); the figures are printed at the end of the run, in both modes, so that a
CI log shows what the suite exercised.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, settings

SOAK = False
"""True under ``pytest --soak`` (set by ``tests/conftest.py`` before collection)."""

SEED = 20261202
"""The fixed seed of CI runs; a soak run draws its own and prints it."""

_figures: list[tuple[str, dict[str, Any]]] = []


def configure(*, soak: bool) -> None:
    """Called once by ``tests/conftest.py``: choose the mode and the seed."""
    global SOAK, SEED  # noqa: PLW0603 - one switch for the whole run, set before collection
    SOAK = soak
    if soak:
        SEED = random.SystemRandom().randrange(2**32)


def budget(ci: int, soak: int) -> int:
    """``ci`` in a normal run, ``soak`` under ``--soak``."""
    return soak if SOAK else ci


def fuzz_settings(ci: int, soak: int, **overrides: Any) -> settings:
    """Hypothesis settings for a fault test: derandomized (a fixed seed) in CI, random under ``--soak``."""
    options: dict[str, Any] = {
        "max_examples": budget(ci, soak),
        "deadline": None,
        "derandomize": not SOAK,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }
    options.update(overrides)
    return settings(**options)


def rng(salt: str) -> random.Random:
    """A random generator seeded from the run's seed and ``salt`` (a test's own stream)."""
    return random.Random(f"{SEED}:{salt}")


def report(test: str, **figures: Any) -> None:
    """Record what a fault test ran (printed at the end of the session)."""
    _figures.append((test, figures))


def lines() -> list[str]:
    """The figures reported so far, one line per report."""
    out = []
    for test, figures in _figures:
        shown = ", ".join(
            f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}"
            for key, value in figures.items()
        )
        out.append(f"{test}: {shown}")
    return out
