"""The task service actor: Hemi's state machine, one owner for every task's state.

The service applies each call and serves the tasks it touched until none
can move (Hemi's synchronous ``serveTransaction`` chain, as a work queue so
a 10k-task chain needs no deep recursion). Each task is a child actor that
runs its ``function``, ``component``, ``script`` and ``xml`` bodies and
tells the service what they returned (`._children`); bodies run one at a
time, in the order their tasks reached them (Hemi's single-threaded
order). A task's ``executor`` (or the service's default, for sync bodies)
runs its ``function`` and ``component`` bodies as a troupe task there
(`run_on`: a worker thread, a worker process, Dask), still one body at a
time. A call is answered once nothing is running any more, so when an
awaited ``execute`` / ``return_dependency`` / ``advance`` / ``load``
returns, every state has moved as far as it can.
Calls made from inside a task's body are answered as soon as they are
applied (waiting would wait for that very body).
"""

from __future__ import annotations

import gc
import inspect
import logging
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...actors import Actor, ActorRef, Mailbox, Restart
from ...actors._explore import run_blocking
from ...protocol import message
from .._errors import TaskListError, TaskServiceError
from .._root import spawn_batched
from ._children import (
    _DependencyActor,
    _DependencySet,
    _load_xml,
    _Ran,
    _Retire,
    _Run,
    _run_script,
    _TaskActor,
    actor_name,
    run_on,
    runs_inline,
)
from ._model import Record, ServiceTask, StuckTask, TaskEvent, TaskState, TaskStateChanged
from ._spec import executor_problem, normalize_type, unknown_type_message
from ._stuck import stuck
from ._tasklist import Registries, TaskList, check, parse_task_list, value_problem

if TYPE_CHECKING:
    from .._executors import Executor
    from ._handle import TaskService

log = logging.getLogger("troupe.tasks.service")

UNBOUNDED = Mailbox(capacity=sys.maxsize)  # a body's report must never be refused
_BODIES = frozenset({"function", "component", "script", "xml"})
QUERIES = frozenset({"state", "stuck", "get", "dependency"})


@message(name="troupe.service.Call")
class Call:
    """A service method call: ``op`` with ``args``; ``nested`` when made from a task body."""

    op: str
    args: tuple[Any, ...]
    nested: bool


class ServiceActor(Actor[Call | _Ran]):
    """Holds every task of one service by id, and the set of returned dependency names."""

    def __init__(
        self, handle: TaskService, registries: Registries, executor: Executor | str | None = None
    ) -> None:
        self.handle = handle
        self.registries = registries
        self.executor = executor  # for sync function and component bodies of tasks without their own
        self.tasks: dict[str, Record] = {}
        self.returned: set[str] = set()
        self.waiting: dict[str, set[str]] = {}  # dependency name -> ids of tasks waiting for it
        self.dependencies: dict[str, ActorRef[Any]] = {}
        self.queue: deque[Record] = deque()
        self.imports: deque[Record] = deque()
        self.busy = False  # a body was started and has not reported yet
        self.bodies: deque[tuple[Record, _Run]] = deque()  # bodies waiting for their turn
        self.pending: list[tuple[Any, bool, Any]] = []  # (reply, ok, value) held until nothing runs
        self.removed: set[str] = set()  # ids of cleared tasks (their names may be taken a while)

    # -- the message loop -------------------------------------------------

    async def receive(self, msg: Call | _Ran) -> None:
        # Nothing a task or a task list does may crash the service (DESIGN: the
        # service never crashes or restarts because of a task), so whatever an
        # operation raises beyond its own errors is answered as a
        # TaskServiceError, and whatever serving one task raises leaves that
        # task stuck with the error (see _drain).
        if isinstance(msg, _Ran):
            try:
                self._ran(msg)
            except Exception as exc:  # noqa: BLE001 - the safety net
                self._unexpected(exc, f"taking the report of task {msg.task!r}'s body")
        else:
            reply = self.context.defer_reply()
            try:
                value = await getattr(self, "op_" + msg.op)(*msg.args)
                ok = True
            except (TaskServiceError, TaskListError, TypeError, ValueError) as exc:
                value, ok = exc, False
            except Exception as exc:  # noqa: BLE001 - the safety net
                value, ok = self._unexpected(exc, f"{msg.op}()"), False
            if msg.nested or msg.op in QUERIES:
                _answer(reply, ok=ok, value=value)
            else:
                self.pending.append((reply, ok, value))
        await self._drain()
        if not self.busy and not self.bodies and self.pending:
            pending, self.pending = self.pending, []
            for reply, ok, value in pending:
                _answer(reply, ok=ok, value=value)

    def _unexpected(self, exc: Exception, doing: str) -> TaskServiceError:
        """Log an error the service did not expect; the `TaskServiceError` to answer with."""
        log.error("task service %s: %s raised", self.ref.path, doing, exc_info=exc)
        error = TaskServiceError(
            f"the task service {self.ref.path} failed in {doing} with {type(exc).__name__}: {exc} "
            "(see __cause__); the service keeps running"
        )
        error.__cause__ = exc
        return error

    async def _drain(self) -> None:
        """Serve queued tasks (and import task lists) until none can move."""
        queue, imports = self.queue, self.imports
        while queue or imports:
            while queue:
                t = queue.popleft()
                try:
                    self._serve(t)
                except Exception as exc:  # noqa: BLE001 - the safety net: the task is stuck, not the service
                    self._stuck_by(t, exc)
            if imports:
                t = imports.popleft()
                try:
                    await self._import(t)
                except Exception as exc:  # noqa: BLE001 - the same net
                    self._stuck_by(t, exc)
        self._pump()

    def _stuck_by(self, t: Record, exc: Exception) -> None:
        """Leave ``t`` stuck with an error that serving it raised."""
        t.error = exc
        t.note = f"serving it raised {type(exc).__name__}: {exc}"
        log.error("task service %s: serving task %s raised", self.ref.path, t.id, exc_info=exc)

    # -- Hemi's serve ------------------------------------------------------

    def _serve(self, t: Record) -> None:
        if t.running or t.state >= TaskState.COMPLETE:  # a running task never completes (nor is removed)
            return
        state = t.state
        if state == TaskState.BUSY:
            if not t.executed:
                t.executed = True
                self._act(t, handler=False)
        elif state == TaskState.ACTIVE:
            if not t.handled and not t.waits:
                t.handled = True
                self._act(t, handler=True)
        elif state == TaskState.HANDLED and not t.waits:
            self._complete(t)

    def _complete(self, t: Record) -> None:
        self._set(t, TaskState.COMPLETE)
        if not t.waits and t.executed and t.handled:
            self._return(t.id)
        else:
            log.info("task %s completed without an action, a handler, or with dependencies", t.id)
        if t.auto_destroy:
            self._set(t, TaskState.DESTROYED)
            self._remove(t)

    def _advance(self, t: Record) -> None:
        if t.state == TaskState.ACTIVE:
            self._set(t, TaskState.HANDLED)
        elif t.state <= TaskState.BUSY:
            self._set(t, TaskState.ACTIVE)

    def _set(self, t: Record, state: TaskState) -> None:
        t.state = state
        system = self.context.system
        if system._events._subs:
            system._emit("troupe.service.state", TaskStateChanged(self.ref.path, t.id, state))

    def _act(self, t: Record, *, handler: bool) -> None:
        """Run the action (or the handler) of ``t`` by its type."""
        kind = t.handler_type if handler else t.action_type
        value = t.handler if handler else t.action
        if kind in _BODIES:
            self._dispatch(t, handler=handler, body=self._body(t, kind, value, handler=handler))
            return
        if kind == "task":
            target = self.tasks.get(value)
            if target is not None and target.state == TaskState.INITIALIZED:
                self._execute(target)
                self._advance(t)
            else:
                what = "does not exist" if target is None else f"was already executed ({target.state.name})"
                t.note = f"its {_part(handler)} executes task {value!r}, which {what}"
        elif kind == "import-task":
            self.imports.append(t)
            return
        elif kind == "event":
            self._advance(t)
            system = self.context.system
            system._events._emit(value, TaskEvent(t.id, t.state, handler))
        else:
            self._advance(t)
        self.queue.append(t)

    def _dispatch(self, t: Record, *, handler: bool, body: Callable[[], Any]) -> None:
        t.running = True
        self.bodies.append((t, _Run(t.id, handler, body)))

    def _pump(self) -> None:
        """Start the next body if none runs: one at a time, in the order tasks reached them."""
        if not self.busy and self.bodies:
            t, run = self.bodies.popleft()
            assert t.ref is not None  # noqa: S101 - every task has its actor
            self.busy = True
            t.ref.tell_nowait(run)

    def _body(self, t: Record, kind: str, value: Any, *, handler: bool) -> Callable[[], Any]:
        service = self.handle
        if kind in ("function", "component"):
            params = t.parameters
            args = params if params or kind == "component" else (t.id, service)
            # A task's own executor runs its bodies; the service's default runs the sync ones.
            executor = t.executor
            if executor is None and not inspect.iscoroutinefunction(value):
                executor = self.executor
            if runs_inline(executor):
                return lambda: value(*args)
            return lambda: run_on(executor, value, args, t.id)
        if kind == "script":
            task = ServiceTask._create(t)
            return lambda: _run_script(value, task, service, handler=handler)
        path = Path(value) if t.base is None else t.base / value
        return lambda: _load_xml(path)

    def _ran(self, msg: _Ran) -> None:
        self.busy = False
        t = self.tasks[msg.task]  # a task with a body running is never removed
        t.running = False
        kind = t.handler_type if msg.handler else t.action_type
        expected = TaskState.ACTIVE if msg.handler else TaskState.BUSY
        if not msg.ok:
            t.error = msg.value
            t.note = f"its {_part(msg.handler)} raised {type(msg.value).__name__}: {msg.value}"
            log.warning("task %s: its %s raised", t.id, _part(msg.handler), exc_info=msg.value)
            return
        if kind == "component":
            t.component = msg.value
            advanced = True
        elif kind == "xml":
            t.data, t.source = msg.value.element, msg.value.source
            advanced = True
        else:
            advanced = bool(msg.value)
        if not advanced:
            t.note = f"its {_part(msg.handler)} returned {msg.value!r} (a false value)"
        elif t.state == expected:
            self._advance(t)
        self.queue.append(t)

    def _execute(self, t: Record) -> bool:
        if t.state != TaskState.INITIALIZED:
            return False
        self._set(t, TaskState.BUSY)
        self.queue.append(t)
        return True

    def _return(self, name: str) -> None:
        t = self.tasks.get(name)
        if t is not None and t.state < TaskState.HANDLED:
            self._set(t, TaskState.HANDLED)  # forced: its handler is skipped
            if name not in self.returned:
                self.queue.append(t)
        if name in self.returned:
            return
        self.returned.add(name)
        for task_id in self.waiting.pop(name, ()):
            waiter = self.tasks.get(task_id)
            if waiter is not None:
                waiter.waits.pop(name, None)
                if not waiter.waits:
                    self.queue.append(waiter)
        dep = self.dependencies.get(name)
        if dep is not None:
            dep.tell_nowait(_DependencySet(returned=True))

    def _remove(self, t: Record) -> None:
        self.removed.add(t.id)
        del self.tasks[t.id]
        for name in t.waits:
            waiting = self.waiting.get(name)
            if waiting is not None:
                waiting.discard(t.id)
        if t.ref is not None:
            t.ref.tell_nowait(_Retire())

    # -- creating tasks ----------------------------------------------------

    def _task(self, key: object) -> Record:
        task_id = key.id if isinstance(key, ServiceTask) else key
        if not isinstance(task_id, str):
            msg = f"a task is given by its ServiceTask or its id (a str), got {key!r}"
            raise TypeError(msg)
        found = self.tasks.get(task_id)
        if found is None:
            msg = (
                f"no task {task_id!r} in the task service {self.ref.path} "
                "(never added, or cleared); add_task() or load() it first"
            )
            raise TaskServiceError(msg)
        return found

    def _resolve(self, kind: str, value: Any) -> Any:
        """A registered name turned into its callable (``function``, ``component``)."""
        if isinstance(value, str):
            if kind == "function":
                return self.registries.function(value)
            if kind == "component":
                return self.registries.component(value)
        return value

    async def _new(
        self,
        task_id: str,
        kinds: tuple[str, str],
        values: tuple[Any, Any],
        params: tuple[Any, ...],
        base: Path | None,
        executor: Executor | str | None = None,
    ) -> Record:
        """Create a task; ``values`` are resolved already (see `_resolve`)."""
        t = Record(task_id, kinds[0], values[0], kinds[1], values[1], params, base, executor=executor)
        name = actor_name("", task_id)
        if task_id in self.removed:  # its cleared predecessor's actor may still be stopping
            serial = 1
            while self.context.system.lookup(f"{self.ref.path}/{name}") is not None:
                serial += 1
                name = actor_name("", task_id) + f"~{serial}"
        t.ref = await spawn_batched(self.context.system, self.ref, lambda: _TaskActor(self.ref), name=name)
        self.tasks[task_id] = t
        self._set(t, TaskState.INITIALIZED)
        return t

    def _depend(self, t: Record, name: str) -> bool:
        if name in self.returned:
            return False
        if name not in t.waits:
            t.waits[name] = None
            self.waiting.setdefault(name, set()).add(t.id)
        return True

    # -- operations (``op_`` + the TaskService method) ---------------------

    async def op_add_task(
        self,
        task_id: object,
        action_type: object,
        action: object,
        handler_type: object,
        handler: object,
        parameters: tuple[Any, ...],
        auto_execute: bool,
        executor: Executor | str | None = None,
    ) -> ServiceTask:
        if not isinstance(task_id, str) or not task_id:
            msg = f"a task id is a non-empty str, got {task_id!r}"
            raise TypeError(msg)
        if task_id in self.tasks:
            msg = (
                f"task {task_id!r} is already in the task service {self.ref.path}; "
                "clear_task() it or use another id"
            )
            raise TaskServiceError(msg)
        kinds = []
        for what, raw, value in (("action", action_type, action), ("handler", handler_type, handler)):
            kind = normalize_type(raw)
            if kind is None:
                raise TaskServiceError(f"task {task_id!r}: {unknown_type_message(raw, what)}")
            problem = value_problem(kind, value, handler=what == "handler", registries=self.registries)
            if problem is not None:
                raise TaskServiceError(f"task {task_id!r}: {problem}")
            kinds.append(kind)
        if executor is not None:
            name = executor if isinstance(executor, str) else repr(executor)
            problem = executor_problem(name, kinds[0], kinds[1])
            if problem is not None:
                raise TaskServiceError(f"task {task_id!r}: {problem}")
        values = (self._resolve(kinds[0], action), self._resolve(kinds[1], handler))
        t = await self._new(task_id, (kinds[0], kinds[1]), values, parameters, None, executor)
        if auto_execute:
            self._execute(t)
        return ServiceTask._create(t)

    async def op_add_dependency(self, task: object, name: object) -> bool:
        t = self._task(task)
        return self._depend(t, _name(name))

    async def op_execute(self, task: object) -> bool:
        return self._execute(self._task(task))

    async def op_execute_handler(self, task: object) -> bool:
        t = self._task(task)
        if t.state != TaskState.BUSY or not t.executed or t.handled or t.running:
            return False
        self._set(t, TaskState.ACTIVE)
        t.note = None
        self.queue.append(t)
        return True

    async def op_advance(self, task: object) -> TaskState:
        t = self._task(task)
        if not t.running:
            t.note = None
        self._advance(t)
        self.queue.append(t)
        await self._drain()
        return t.state

    async def op_return_dependency(self, name: object) -> None:
        self._return(_name(name))

    async def op_clear_dependency(self, name: object) -> bool:
        key = _name(name)
        if key not in self.returned:
            return False
        self.returned.discard(key)
        dep = self.dependencies.get(key)
        if dep is not None:
            dep.tell_nowait(_DependencySet(returned=False))
        return True

    async def op_clear_task(self, task: object) -> None:
        t = self._task(task)
        if t.state < TaskState.COMPLETE:
            t.auto_destroy = True
        else:
            self._remove(t)

    async def op_state(self, task: object) -> TaskState:
        return self._task(task).state

    async def op_get(self, task: object) -> ServiceTask:
        return ServiceTask._create(self._task(task))

    async def op_dependency(self, name: object) -> ActorRef[Any]:
        key = _name(name)
        ref = self.dependencies.get(key)
        if ref is None:
            ref = await self.context.spawn(
                lambda: _DependencyActor(key, key in self.returned),
                name=actor_name("dependency:", key),
                restart=Restart.TEMPORARY,
            )
            self.dependencies[key] = ref
        return ref

    async def op_stuck(self) -> list[StuckTask]:
        return stuck(self.tasks)

    async def op_load(self, tasks: TaskList) -> tuple[str, ...]:
        await self._add_list(tasks)
        return tuple(spec.id for spec in tasks.tasks)

    async def op_execute_task_loader(self, name: object, path: object, entry: object) -> ServiceTask:
        if not isinstance(path, str | Path) or not isinstance(entry, str):
            msg = f"execute_task_loader() takes a path and an entry task id, got {path!r} and {entry!r}"
            raise TypeError(msg)
        loader = await self.op_add_task(name, "xml", str(path), "import-task", entry, (), False)  # noqa: FBT003
        self._execute(self._task(loader.id))
        return loader

    # -- task lists ------------------------------------------------------

    async def _add_list(self, tasks: TaskList) -> None:
        known = {task_id: [n for n in t.waits if n in self.tasks] for task_id, t in self.tasks.items()}
        check(tasks, known=known, registries=self.registries)
        values = [
            (self._resolve(spec.action_type, spec.action), self._resolve(spec.handler_type, spec.handler))
            for spec in tasks.tasks
        ]
        created: dict[str, Record] = {}
        # Creating thousands of records and actors is what triggers the cyclic
        # GC's full passes, each walking every object made so far: pausing it
        # for the bulk creation keeps a load linear (bench/service.py: the
        # 20k/10k time ratio goes from ~2.2 to the figure in the issue note).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for spec, resolved in zip(tasks.tasks, values, strict=True):
                kinds = (spec.action_type, spec.handler_type)
                created[spec.id] = await self._new(
                    spec.id, kinds, resolved, spec.params, tasks.base, spec.executor
                )
        except Exception:
            for t in created.values():  # a failed load leaves the service as it was
                self._remove(t)
            raise
        finally:
            if collecting:
                gc.enable()
        for spec in tasks.tasks:
            t = created[spec.id]
            for child in spec.children:
                self._depend(t, child.rid)
            for name, _ in spec.depends:
                self._depend(t, name)
        for task_id in _auto_order(tasks):
            target = self.tasks.get(task_id)
            if target is not None:
                self._execute(target)
                await self._drain()

    async def _import(self, t: Record) -> None:
        """The ``import-task`` handler: load the list the action loaded, run its entry task."""
        entry = t.handler
        if t.source is None:
            t.note = "its import-task handler needs the document an xml action loads (action-type xml)"
            return
        try:
            fmt = Path(t.action).suffix.lstrip(".").lower() or "xml"
            source, file, base = t.source, t.action, t.base  # parsed off the trio thread, as load() does
            tasks = await run_blocking(lambda: parse_task_list(source, fmt, file=file, base=base))
            _check_entry(tasks, entry, self.tasks)
            await self._add_list(tasks)
        except (TaskListError, ValueError) as exc:
            t.error = exc
            t.note = f"its import-task handler failed: {exc}"
            log.warning("task %s: %s", t.id, t.note)
            return
        self._depend(t, entry)
        self._advance(t)
        target = self.tasks.get(entry)
        if target is not None:
            self._execute(target)
        self.queue.append(t)


def _check_entry(tasks: TaskList, entry: str, known: dict[str, Record]) -> None:
    """Refuse an import-task entry that names no task of the list or the service."""
    if entry not in known and all(spec.id != entry for spec in tasks.tasks):
        msg = f"the import-task entry {entry!r} is not a task of this list; name one of its task ids"
        raise tasks.error(msg)


def _auto_order(tasks: TaskList) -> list[str]:
    """The tasks to execute at load: auto-execute children deepest first, in document order."""
    by_id = {spec.id: spec for spec in tasks.tasks}
    seen: set[str] = set()
    order: list[str] = []
    for top in tasks.tasks:
        if top.id in seen:
            continue
        seen.add(top.id)
        stack = [(top, iter(top.children), top.auto_execute)]
        while stack:
            spec, children, auto = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if auto:
                    order.append(spec.id)
                continue
            found = by_id.get(child.rid)
            if found is None or child.rid in seen:
                if child.auto_execute:
                    order.append(child.rid)
                continue
            seen.add(child.rid)
            stack.append((found, iter(found.children), child.auto_execute))
    return order


def _part(handler: bool) -> str:
    return "handler" if handler else "action"


def _name(value: object) -> str:
    name = value.id if isinstance(value, ServiceTask) else value
    if not isinstance(name, str) or not name:
        msg = f"a dependency is a name (a non-empty str) or a ServiceTask, got {value!r}"
        raise TypeError(msg)
    return name


def _answer(reply: Any, *, ok: bool, value: Any) -> None:
    if ok:
        reply.send(value)
    else:
        reply.fail(value)
