"""The pytest plugin (registered through the ``pytest11`` entry point).

Fixtures: ``system``, ``probe``, ``assert_no_dead_letters`` and
``nats_server`` (which needs the ``cluster`` extra). They run on
pytest-trio, so use ``trio_mode = true`` (or mark tests with
``@pytest.mark.trio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from ..actors import ActorSystem, open_system
from ..protocol import DeadLetter
from ._nats import nats_server  # noqa: F401 - a fixture: pytest finds it in the plugin module
from ._probe import TestProbe


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """An open actor system, shut down after the test.

    ``troupe.current_system()`` inside the test is this system.
    """
    async with open_system(name="test") as opened:
        yield opened


@pytest.fixture
async def probe(system: ActorSystem) -> TestProbe:
    """A [`TestProbe`][troupe.testing.TestProbe] in the ``system`` fixture."""
    return await TestProbe.create(system, name="probe")


@pytest.fixture
async def assert_no_dead_letters(system: ActorSystem) -> AsyncIterator[None]:
    """Fail the test if its ``system`` produced dead letters during the test.

    Dead letters created while the system shuts down after the test do not
    count.
    """
    before = system.dead_letters.count
    async with system.dead_letters.listen() as stream:
        yield
        letters: list[DeadLetter] = []
        while True:
            try:
                letters.append(stream.receive_nowait())
            except trio.WouldBlock:
                break
    if system.dead_letters.count != before:
        shown = "\n".join(f"  {d.reason.name}: {d.message!r} -> {d.recipient}" for d in letters[:20])
        pytest.fail(
            f"{system.dead_letters.count - before} dead letter(s) during the test:\n{shown}",
            pytrace=False,
        )
