"""GoAsync's task manager in troupe: a small service of three managed tasks.

Run it with ``troupe run examples/goasync_service.py`` (or ``python
examples/goasync_service.py``), or with ``python examples/goasync_service.py
--forever`` and stop it with Ctrl-C.

A database-like task, a server-like task that queries it, and a metrics
flush on a `RepeatTimer` run under one manager: initialized one by one in
order, executed in parallel, cleaned up in reverse order.

1. The server breaks after a few requests: the manager cancels everything,
   cleans up, and its `TaskManagerError` names every error by task and stage.
2. The same service runs until Ctrl-C (SIGINT or SIGTERM), then stops
   cleanly: every task cleaned up, no error.
"""

from __future__ import annotations

import signal
import sys

import trio

import troupe


class Database:
    """Holds a (pretend) connection; answers queries while it runs."""

    def __init__(self) -> None:
        self.connected = False
        self.queries = 0

    async def initialize(self) -> None:
        print("  database: connecting")
        self.connected = True

    async def execute(self) -> None:
        await trio.sleep_forever()  # the connection pool's background work

    async def query(self, sql: str) -> int:
        if not self.connected:
            msg = "the database is not connected"
            raise RuntimeError(msg)
        self.queries += 1
        await trio.sleep(0.01)
        return len(sql)

    async def cleanup(self) -> None:
        self.connected = False
        print(f"  database: closed after {self.queries} queries")


class Server:
    """Serves a request every 50 ms, each one querying the database."""

    def __init__(self, db: Database, *, fail_after: int | None) -> None:
        self.db = db
        self.fail_after = fail_after
        self.served = 0

    async def initialize(self) -> None:
        print("  server: listening")

    async def execute(self) -> None:
        while True:
            await trio.sleep(0.05)
            await self.db.query("SELECT 1")
            self.served += 1
            if self.fail_after is not None and self.served >= self.fail_after:
                msg = f"request {self.served} hit a bug"
                raise ValueError(msg)

    async def cleanup(self) -> None:
        print(f"  server: stopped after {self.served} requests")


class FlushMetrics:
    """What the RepeatTimer runs: flush the counters."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.flushes = 0

    async def execute(self) -> None:
        self.flushes += 1

    async def cleanup(self) -> None:
        print(f"  metrics: flushed {self.flushes} times")


async def service(*, fail_after: int | None, stop_on_signal: bool, seconds: float | None) -> None:
    db = Database()
    server = Server(db, fail_after=fail_after)
    async with troupe.open_task_manager(cleanup_timeout=5) as manager:
        manager.add("database", db)
        manager.add("server", server)
        manager.add("metrics", troupe.RepeatTimer(0.1, FlushMetrics(server)))
        failed: troupe.TaskManagerError | None = None
        async with trio.open_nursery() as nursery:
            if stop_on_signal:
                nursery.start_soon(_stop_on_signal, manager)
            if seconds is not None:
                nursery.start_soon(_stop_after, manager, seconds)
            try:
                await manager.run()
            except troupe.TaskManagerError as exc:
                failed = exc  # raised outside the nursery, so not inside an exception group
            nursery.cancel_scope.cancel()
        if failed is not None:
            raise failed


async def _stop_on_signal(manager: troupe.TaskManager) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        print("  serving; press Ctrl-C to stop", flush=True)
        async for signum in signals:
            print(f"  {signal.Signals(signum).name}: stopping", flush=True)
            manager.stop()
            return


async def _stop_after(manager: troupe.TaskManager, seconds: float) -> None:
    await trio.sleep(seconds)
    print(f"  {seconds} s are up: stopping")
    manager.stop()


async def main(system: troupe.ActorSystem) -> list[str]:  # noqa: ARG001 - the manager finds the system itself
    print("1. the server breaks: everything stops, every error named")
    named: list[str] = []
    try:
        await service(fail_after=3, stop_on_signal=False, seconds=None)
    except troupe.TaskManagerError as exc:
        for error in exc.errors:
            named.append(f"{error.name} ({error.stage})")
            print(f"  error: {error}")
    print("2. a clean stop")
    await service(fail_after=None, stop_on_signal=True, seconds=0.3)
    print("  stopped cleanly")
    return named


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system():
            if "--forever" in sys.argv:
                await service(fail_after=None, stop_on_signal=True, seconds=None)
                print("  stopped cleanly", flush=True)
            else:
                await main(troupe.current_system())

    trio.run(_standalone)
