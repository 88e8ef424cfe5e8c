"""Task bodies on a Dask cluster: `DaskExecutor`.

The executor keeps one Dask ``Client`` per system (in sync mode: the
client runs its own event loop in a thread of its own). A task's body is
pickled once, when the task is made. The bodies submitted in one pass of
trio's scheduler go to Dask together, in one ``client.map``; Dask calls
back when each is done, and the client's loop fetches the results of all
that are done by then with one ``gather`` (one request per worker, not per
task), handing each outcome to trio with ``TrioToken.run_sync_soon``. No
thread is started per future, and nothing of trio's is left behind: the
client, and the embedded ``LocalCluster`` when there is one, belong to a
system actor (``/system/tasks/dask-N``) that closes them at the system's
shutdown.

``distributed`` is imported when the executor is first used, never by
``import troupe``: without the ``dask`` extra, using it is one
`ImportError` that names the extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import logging
import os
import pickle
import re
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

import trio
from outcome import Error, Outcome, Value

from ..actors import Actor, ActorSystem, current_system
from ..protocol import message
from ._handle import CURRENT_TASK
from ._root import ask_runtime_actor

if TYPE_CHECKING:
    import concurrent.futures

    import distributed

log = logging.getLogger("troupe.tasks")

_EXTRA: Final = "the DaskExecutor needs troupe's dask extra: pip install 'trio-troupe[dask]'"

_IN_DASK: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "troupe_in_dask", default=None
)
"""In a Dask worker, while a troupe task body runs: (the progress topic, the submission's key)."""

_numbers = itertools.count(1)

_ADDRESS: Final = re.compile(
    r"(?:(?:tcp|tls)://)?(?:[^\s/:\[\]]+|\[[0-9a-fA-F:.]+\]):\d{1,5}|(?!(?:tcp|tls)://)[a-z][a-z0-9+.-]*://\S+"
)
"""A Dask scheduler address: ``tcp://host:8786``, ``host:8786``, or another protocol's ``proto://...``."""

_CLIENT_CHECK: Final = 1.0
"""Seconds between checks that the client is still open (a user's may be closed under us)."""

_SCHEDULER: Final = {"allowed_failures": 0, "dashboard": False, "dashboard_address": ":0"}
"""The embedded scheduler: troupe counts the retries; no dashboard; its HTTP routes on any free port."""


def _distributed() -> Any:
    try:
        import distributed  # noqa: PLC0415 - optional: only when a DaskExecutor is used
    except ImportError as exc:
        raise ImportError(_EXTRA) from exc
    return distributed


@final
class _Exited:
    """A body's `SystemExit` or `KeyboardInterrupt`, carried back as a value (raised, it ends the worker)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _call_in_dask(blob: bytes, topic: str, key: str) -> Any:
    """What a Dask worker runs: the task's function on its arguments, with progress reaching its owner."""
    fn, args = pickle.loads(blob)  # noqa: S301 - our own blob, made by DaskExecutor.prepare
    token = _IN_DASK.set((topic, key))
    try:
        return fn(*args)
    except (SystemExit, KeyboardInterrupt) as exc:  # the task's error, not the worker's end
        return _Exited(exc)
    finally:
        _IN_DASK.reset(token)


def report_progress_from_dask(fraction: float, text: str) -> bool:
    """In a Dask worker running a troupe task: send its progress to the owner; False elsewhere."""
    target = _IN_DASK.get()
    if target is None:
        return False
    topic, key = target
    _distributed().get_worker().log_event(topic, {"key": key, "fraction": fraction, "message": text})
    return True


@final
class DaskExecutor:
    """Run task bodies on a Dask cluster (``distributed``), from the system's trio loop.

    Args:
        address: None (the default) starts a ``LocalCluster`` of worker
            processes, one per core (``n_workers``), for the system's
            lifetime, closed at its shutdown; a scheduler address
            (``"tcp://host:8786"``) connects to a running cluster; a
            ``distributed.Client`` is used as it is (and left open).
        retries: how many times a body is submitted again when the worker
            running it is lost (it died, or was killed); after that the
            task fails with Dask's ``KilledWorker``, which names the last
            lost worker. An exception the body raises is never retried.
        n_workers: worker processes of the embedded cluster (default: the
            number of cores).

    The function and arguments are pickled (with cloudpickle, as Dask
    does: lambdas and local functions travel) once, when the task is made:
    one that cannot be is a `TypeError` there, and nothing is submitted.
    The result, or the exception with its type, comes back as from the
    process executor. A forced cancel cancels the Dask future and the task
    ends cancelled at once. ``report_progress`` inside a body reaches the
    task's job. Workers of a cluster elsewhere need troupe installed.

    Example:
        ```python
        dask = troupe.DaskExecutor()
        t = await troupe.run_task(simulate, 10_000, executor=dask)
        ```
    """

    name: ClassVar[str] = "dask"
    unpack = staticmethod(_call_in_dask)
    """What a task made for this executor runs, on its one argument: the pickled body."""

    def __init__(
        self,
        address: str | distributed.Client | None = None,
        *,
        retries: int = 0,
        n_workers: int | None = None,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            msg = f"retries= is a number of times, 0 or more, got {retries!r}"
            raise ValueError(msg)
        if n_workers is not None and (
            isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
        ):
            msg = f"n_workers= is a number of worker processes, 1 or more, got {n_workers!r}"
            raise ValueError(msg)
        if n_workers is not None and address is not None:
            msg = "n_workers= is for the embedded cluster (address=None): a cluster elsewhere has its own"
            raise ValueError(msg)
        if isinstance(address, str) and not _ADDRESS.fullmatch(address):
            msg = (
                f"address= {address!r} is not a Dask scheduler address: give one like 'tcp://host:8786' "
                "(or None for a cluster of the executor's own)"
            )
            raise ValueError(msg)
        if address is not None and not isinstance(address, str):
            client_type = _distributed().Client
            if not isinstance(address, client_type):
                msg = f"address= takes None, a scheduler address or a distributed.Client, got {address!r}"
                raise TypeError(msg)
            if address.asynchronous:
                msg = (
                    "address= takes a regular distributed.Client (it runs its own event loop in a thread), "
                    "not one made with asynchronous=True"
                )
                raise TypeError(msg)
        self.address = address
        """What the executor connects to (None: an embedded ``LocalCluster``)."""
        self.retries = retries
        """Submissions again after a lost worker."""
        self.n_workers = n_workers or os.cpu_count() or 1
        """Worker processes of the embedded cluster."""
        self._number = next(_numbers)

    def __repr__(self) -> str:
        where = "embedded" if self.address is None else repr(self.address)
        return f"DaskExecutor({where}, retries={self.retries})"

    @staticmethod
    def prepare(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
        """Pickle ``fn`` and ``args`` once, as Dask will send them.

        Raises:
            TypeError: they cannot be pickled (an open file, a lock, a socket...),
                or ``fn`` is async (Dask runs plain functions).
            ImportError: the ``dask`` extra is not installed.
        """
        if inspect.iscoroutinefunction(fn):
            msg = (
                f"the dask executor runs plain functions; {getattr(fn, '__qualname__', fn)!r} is async: "
                "run it inline (on trio), or give Dask a sync function"
            )
            raise TypeError(msg)
        cloudpickle = _distributed().protocol.pickle.cloudpickle
        try:
            blob: bytes = cloudpickle.dumps((fn, args))
        except Exception as exc:
            msg = (
                f"the dask executor cannot send {getattr(fn, '__qualname__', fn)!r} or its arguments "
                f"({type(exc).__name__}: {exc}); pass data that pickles (no open files, locks or sockets)"
            )
            raise TypeError(msg) from exc
        return blob

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``fn(*args)`` on the cluster and return its result (cancelling this cancels it there)."""
        blob = args[0] if fn is self.unpack else self.prepare(fn, args)
        session = await _session(current_system(), self)
        return await session.run(blob, self.retries, _job_reporter())


def _job_reporter() -> Callable[[float, str], None] | None:
    """Where the current task's progress goes (its job's record), or None."""
    task = CURRENT_TASK.get()
    if task is None or task.job_id is None:
        return None
    observer = task._record.system._jobs
    if observer is None:
        return None
    job_id = task.job_id
    return lambda fraction, text: observer.job_progress(job_id, fraction, text)


# -- the session: one client per executor and system -----------------------------------------


class _Pending:
    """One submission: its body and key, then its Dask future, then its outcome."""

    __slots__ = ("abandoned", "blob", "done", "done_callbacks", "future", "key", "outcome")

    def __init__(self, blob: bytes, key: str) -> None:
        self.blob = blob
        self.key = key
        self.future: Any = None
        self.outcome: Outcome[Any] | None = None
        self.abandoned = False
        self.done = trio.Event()
        self.done_callbacks: Callable[[_Pending], object] | None = None

    def settle(self, outcome: Outcome[Any]) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.done.set()
            if self.done_callbacks is not None:
                self.done_callbacks(self)


class _Session:
    """The client (and embedded cluster) of one executor in one system; the trio side of it."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.executor = executor
        self.token = trio.lowlevel.current_trio_token()
        self.client: Any = None
        self.cluster: Any = None
        self.owned = False  # the client is ours to close
        self.topic = f"troupe-progress-{uuid.uuid4().hex}"
        self.keys = f"troupe-task-{uuid.uuid4().hex}"  # then -1, -2...: unique, without urandom per task
        self.numbers = itertools.count(1)
        self.reporters: dict[str, Callable[[float, str], None]] = {}
        self.batch: list[_Pending] = []  # submitted at the end of this scheduler pass (trio's thread)
        self.ready: list[_Pending] = []  # done, their results not fetched yet (the client's loop)
        self.collecting: set[asyncio.Future[None]] = set()
        self.lock = threading.Lock()  # open (a worker thread, maybe abandoned) against close
        self.waiting: set[_Pending] = set()  # submitted (or about to be), their outcome not known yet
        self.closed = False

    # -- opening and closing (in a worker thread: they block) --

    def open(self) -> None:
        """Connect (starting the embedded cluster first); in a thread that a cancel may abandon."""
        distributed = _distributed()
        address = self.executor.address
        cluster = client = None
        try:
            if isinstance(address, distributed.Client):
                client = address
            else:
                if address is None:
                    cluster = distributed.LocalCluster(
                        n_workers=self.executor.n_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        # troupe counts the retries; no dashboard, and its HTTP routes on any free port
                        scheduler_kwargs={
                            "allowed_failures": 0,
                            "dashboard": False,
                            "dashboard_address": ":0",
                        },
                        silence_logs=logging.CRITICAL,  # a body's error is the task's, reported by troupe
                    )
                # Made in two steps so that a client that fails to connect can still be closed: its
                # event loop thread would outlive the system, and block the interpreter's exit.
                client = distributed.Client.__new__(distributed.Client)
                client.__init__(cluster or address, set_as_default=False)
            client.subscribe_topic(self.topic, self._on_progress)
        except BaseException:
            self._close(client if client is not address else None, cluster)
            raise
        with self.lock:
            if not self.closed:  # else it was given up on (cancelled, shut down) while connecting
                self.client, self.cluster, self.owned = client, cluster, client is not address
                return
        self._close(client if client is not address else None, cluster)

    def close(self) -> None:
        """Close what `open` made (not a user's client); `open`, still running, closes it when done."""
        with self.lock:
            self.closed = True
            client, cluster, owned = self.client, self.cluster, self.owned
            self.client = self.cluster = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(self.topic)
        self._close(client if owned else None, cluster)

    @staticmethod
    def _close(client: Any, cluster: Any) -> None:
        for part in (client, cluster):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        if client is not None:  # a client that timed out connecting: close() leaves its loop thread running
            with contextlib.suppress(Exception):
                client._loop_runner.stop()

    # -- running (on trio) --

    async def run(self, blob: bytes, retries: int, reporter: Callable[[float, str], None] | None) -> Any:
        distributed = _distributed()
        lost = 0
        while True:
            key = f"{self.keys}-{next(self.numbers)}"
            if reporter is not None:
                self.reporters[key] = reporter
            try:
                return await self._submitted(_Pending(blob, key))
            except distributed.KilledWorker as exc:
                if lost >= retries:
                    exc.add_note(f"troupe submitted it {lost + 1} time(s) (retries={retries})")
                    raise
                lost += 1
                log.warning(
                    "a Dask worker was lost running %s; submitting it again (%d of %d)", key, lost, retries
                )
            finally:
                self.reporters.pop(key, None)

    async def _submitted(self, pending: _Pending) -> Any:
        """Submit with the others of this scheduler pass (one ``client.map``); wait for the outcome."""
        if self.closed or self.client is None:
            msg = "the dask executor's client is closed (its system is shutting down)"
            raise RuntimeError(msg)
        self.batch.append(pending)
        if len(self.batch) == 1:
            self.token.run_sync_soon(self._flush)
        self.waiting.add(pending)
        pending.done_callbacks = self.waiting.discard
        try:
            await pending.done.wait()
        except trio.Cancelled:
            pending.abandoned = True  # not submitted yet: it never will be
            if pending.future is not None:
                self._cancel(pending.future)  # its collection then settles it with Dask's CancelledError
            raise
        assert pending.outcome is not None  # noqa: S101 - set before done
        value = pending.outcome.unwrap()
        if type(value) is _Exited:
            if isinstance(value.error, KeyboardInterrupt):  # raised here, it would be this process's Ctrl-C
                msg = "the task's body raised KeyboardInterrupt on a Dask worker"
                raise RuntimeError(msg) from value.error
            raise value.error
        return value

    def _flush(self) -> None:
        """Submit the batch (in trio's thread, between tasks) and watch it on the client's loop."""
        batch = [p for p in self.batch if not p.abandoned]
        self.batch = []
        if not batch:
            return
        try:
            if self.client is None:
                msg = "the dask executor's client is closed (its system is shutting down)"
                raise RuntimeError(msg)  # noqa: TRY301 - failed like any other submission
            keys = [p.key for p in batch]
            futures = self.client.map(
                _call_in_dask, [p.blob for p in batch], [self.topic] * len(batch), keys, key=keys, pure=False
            )
            for p, future in zip(batch, futures, strict=True):
                p.future = future
                future.add_done_callback(functools.partial(self._finished, p))
        except Exception as exc:  # noqa: BLE001 - each task of the batch fails with it
            for p in batch:
                p.settle(Error(exc))

    def _finished(self, pending: _Pending, _: object) -> None:
        """In Dask's callback thread: a future of ours is done; collect it on the client's loop."""
        loop: asyncio.AbstractEventLoop = pending.future.client.loop.asyncio_loop
        loop.call_soon_threadsafe(self._ready, pending)

    def _ready(self, pending: _Pending) -> None:
        if self.closed:  # shutting down: the futures end with the client, their tasks with the shutdown
            return
        self.ready.append(pending)
        if len(self.ready) == 1:
            collecting = asyncio.ensure_future(self._collect())
            self.collecting.add(collecting)  # asyncio keeps only a weak reference to a task
            collecting.add_done_callback(self.collecting.discard)

    async def _collect(self) -> None:
        """On the client's loop: fetch the results of every future done by now, one gather for all."""
        await asyncio.sleep(0)  # the others done in this pass of the loop join in
        ready, self.ready = self.ready, []
        client = self.client
        if self.closed or client is None:
            # The system is shutting down and the client closing: these futures end with it. Their
            # tasks are being cancelled by the shutdown, and end with that (TaskCancelled), not this.
            return
        finished = [p for p in ready if p.future.status == "finished"]
        one_by_one = [p for p in ready if p.future.status != "finished"]
        if finished:
            try:
                values = await client.gather([p.future for p in finished], asynchronous=True)
            except Exception:  # noqa: BLE001 - a result lost meanwhile: each gets its own outcome below
                one_by_one += finished
            else:
                for p, value in zip(finished, values, strict=True):
                    self._in_trio(functools.partial(p.settle, Value(value)))
        for p in one_by_one:  # errors, cancellations (a gather raises them with their types)
            try:
                value = await client.gather(p.future, asynchronous=True)
            except BaseException as exc:  # noqa: BLE001 - Dask's CancelledError too: the task's outcome
                self._in_trio(functools.partial(p.settle, Error(exc)))
            else:
                self._in_trio(functools.partial(p.settle, Value(value)))

    def _cancel(self, future: distributed.Future[Any]) -> None:
        client = self.client
        if client is None or client.status in ("closing", "closed"):
            return  # closing releases its futures; its stopped loop would never run the coroutine
        cancelling = self._on_loop(client.cancel([future], asynchronous=True, force=True))
        cancelling.add_done_callback(_log_failure)

    def _on_loop(self, coro: Any) -> concurrent.futures.Future[Any]:
        loop: asyncio.AbstractEventLoop = self.client.loop.asyncio_loop
        return asyncio.run_coroutine_threadsafe(_awaited(coro), loop)

    def _in_trio(self, fn: Callable[[], object]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(fn)

    # -- progress (on the client's loop) --

    def _on_progress(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict):
            return
        self._in_trio(lambda: self._progress(msg))

    def _progress(self, msg: dict[str, Any]) -> None:
        reporter = self.reporters.get(msg.get("key"))  # type: ignore[arg-type]
        fraction, text = msg.get("fraction"), msg.get("message")
        if reporter is not None and isinstance(fraction, int | float) and isinstance(text, str):
            reporter(float(fraction), text)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _log_failure(done: concurrent.futures.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("cancelling a Dask future failed: %r", done.exception())


# -- the actor that holds a session for the system's lifetime ------------------------------------


@message(name="troupe.tasks.GetDaskSession")
class _GetSession:
    pass


class _SessionHolder(Actor[_GetSession]):
    """Opens the session when it starts, closes it (client, embedded cluster) when it stops."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.session = _Session(executor)

    async def on_start(self) -> None:
        # Connecting may take Dask's connect timeout (30 s): a cancel (a forced cancel of the task
        # waiting for it, the system's shutdown) gives it up at once; `open` closes what it made.
        try:
            await trio.to_thread.run_sync(self.session.open, abandon_on_cancel=True)
        except trio.Cancelled:
            self.session.close()
            raise
        self.context.start_soon(self._watch_client)

    async def _watch_client(self) -> None:
        """Once a second: if the client is closed, fail what waits on it.

        A user's client may be closed under us, and its event loop with it:
        nothing would ever settle what waits on its futures.
        """
        session = self.session
        while True:
            await trio.sleep(_CLIENT_CHECK)
            client = session.client
            if client is not None and client.status in ("closing", "closed") and session.waiting:
                error = _distributed().client.ClosedClientError
                for pending in list(session.waiting):
                    pending.settle(Error(error(f"the Dask client {client!r} was closed")))

    async def receive(self, msg: _GetSession) -> _Session:  # noqa: ARG002 - the one request
        return self.session

    async def on_stop(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.session.close)


async def _session(system: ActorSystem, executor: DaskExecutor) -> _Session:
    key = f"tasks.dask.{executor._number}"
    cached: _Session | None = system._extensions.get(key)
    if cached is not None and not cached.closed:
        return cached
    holder = functools.partial(_SessionHolder, executor)
    session: _Session = await ask_runtime_actor(system, f"dask-{executor._number}", holder, _GetSession())
    system._extensions[key] = session
    return session
