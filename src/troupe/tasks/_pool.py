"""The system's worker-process pool: a trio-parallel worker context held by an actor."""

from __future__ import annotations

import trio
import trio_parallel

from ..actors import Actor, ActorSystem, current_system
from ..protocol import message
from ._root import ask_runtime_actor


@message(name="troupe.tasks.GetWorkerContext")
class _GetContext:
    pass


@message(name="troupe.tasks.CullIdleWorkers")
class _Cull:
    pass


class WorkerPool(Actor[_GetContext | _Cull]):
    """Holds a trio-parallel worker context open for the system.

    ``_Cull`` opens a fresh context for new work and closes the old one: its
    idle workers end now, busy ones when their job is done.
    """

    def __init__(self) -> None:
        self.worker_context: trio_parallel.WorkerContext | None = None
        self.holder: trio.CancelScope | None = None

    async def on_start(self) -> None:
        await self._open()

    async def _open(self) -> None:
        ready = trio.Event()
        scope = trio.CancelScope()

        async def hold() -> None:
            with scope:
                async with trio_parallel.open_worker_context(grace_period=1.0) as ctx:
                    self.worker_context = ctx
                    ready.set()
                    await trio.sleep_forever()

        self.context.start_soon(hold)
        await ready.wait()
        self.holder = scope
        self.context.system._extensions[_KEY] = self.worker_context  # callers skip the ask

    async def receive(self, msg: _GetContext | _Cull) -> trio_parallel.WorkerContext | None:
        if isinstance(msg, _Cull):
            old = self.holder
            await self._open()
            if old is not None:
                old.cancel()
            return None
        return self.worker_context


_KEY = "tasks.worker_context"


async def worker_context(system: ActorSystem) -> trio_parallel.WorkerContext:
    """The system's current worker context (the pool starts on first use)."""
    cached: trio_parallel.WorkerContext | None = system._extensions.get(_KEY)
    if cached is not None:
        return cached
    ctx: trio_parallel.WorkerContext = await ask_runtime_actor(system, "workers", WorkerPool, _GetContext())
    return ctx


async def cull_idle_workers() -> None:
    """End the system's idle worker processes now (busy ones when their job is done)."""
    system = current_system()
    pool = system.lookup("/system/tasks/workers")
    if pool is None:
        await trio.lowlevel.checkpoint()
        return
    await pool.ask(_Cull(), timeout=None)
