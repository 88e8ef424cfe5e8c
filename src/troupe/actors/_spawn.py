"""Spawning: name checks, the new cell, and the first start."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from trio.lowlevel import checkpoint_if_cancelled

from . import _cell as cells
from . import _instance as instance
from ._errors import ActorStopped, NameTaken
from ._mailbox import DEFAULT_MAILBOX, Mailbox
from ._ref import ActorRef
from ._supervision import Restart

if TYPE_CHECKING:
    from ._actor import Actor
    from ._system import ActorSystem

M = TypeVar("M")


async def spawn_under(
    parent: ActorRef[Any],
    factory: Callable[[], Actor[M]],
    *,
    name: str | None = None,
    mailbox: Mailbox | None = None,
    restart: Restart = Restart.PERMANENT,
    schedule: bool = True,
) -> ActorRef[M]:
    """Spawn a child of ``parent`` from outside it (for troupe's own layers).

    With ``schedule=False`` an actor without ``on_start`` is spawned without
    a scheduler pass (it is still a cancel point): the caller yields itself.
    """
    return await spawn(parent._cell, factory, name=name, mailbox=mailbox, restart=restart, schedule=schedule)


def new_cell(
    system: ActorSystem,
    parent: cells._Cell | None,
    name: str,
    factory: Callable[[], Actor[Any]] | None,
    accepts: tuple[type, ...] | None,
    mailbox: Mailbox,
    restart: Restart,
) -> cells._Cell:
    return cells._Cell(system, parent, name, factory, accepts, mailbox.capacity, mailbox.overflow, restart)


def _check_name(name: object, parent: cells._Cell) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        msg = f"an actor name is a non-empty str without '/', got {name!r} (under {parent.path})"
        raise ValueError(msg)
    return name


def _auto_name(parent: cells._Cell, cls: type) -> str:
    numbers = parent.child_numbers
    if numbers is None:
        numbers = parent.child_numbers = {}
    base = cls.__name__.lstrip("_") or "actor"  # a private class: "Worker-1", not "_Worker-1"
    n = numbers.get(base, 0)
    children = parent.children
    while True:
        n += 1
        name = f"{base}-{n}"
        if children is None or name not in children:
            numbers[base] = n
            return name


async def spawn(  # noqa: C901 - argument checks, each with its own message
    parent: cells._Cell,
    factory: Callable[[], Actor[M]],
    *,
    name: str | None,
    mailbox: Mailbox | None,
    restart: Restart,
    schedule: bool = True,
) -> ActorRef[M]:
    """Create a child of ``parent`` and return once its ``on_start`` finished."""
    await checkpoint_if_cancelled()
    system = parent.system
    if (
        parent.state > cells.RUNNING
        or parent.exiting
        or (parent.guardian_strategy is not None and system._closing)
    ):
        what = "the system is shutting down" if system._closing else f"{parent.path} is stopping"
        raise ActorStopped(parent.path, f"cannot spawn under {parent.path or '/'}: {what}")
    if not callable(factory):
        msg = f"spawn() takes a zero-argument callable that returns an actor, got {factory!r}"
        raise TypeError(msg)
    if mailbox is None:
        mailbox = DEFAULT_MAILBOX
    elif not isinstance(mailbox, Mailbox):
        msg = f"mailbox must be a troupe.Mailbox, got {mailbox!r}"
        raise TypeError(msg)
    if not isinstance(restart, Restart):
        msg = f"restart must be a troupe.Restart, got {restart!r}"
        raise TypeError(msg)
    if name is not None:
        _check_name(name, parent)
        if parent.children and name in parent.children:
            raise NameTaken(f"{parent.path}/{name}")
    actor = instance.make_actor(factory, f"{parent.path}/{name or '<unnamed>'}")
    cls = type(actor)
    if name is None:
        name = _auto_name(parent, cls)
    elif parent.children and name in parent.children:  # the factory spawned it meanwhile
        raise NameTaken(f"{parent.path}/{name}")
    cell = new_cell(system, parent, name, factory, cls.__troupe_accepts__, mailbox, restart)
    children = parent.children
    if children is None:
        children = parent.children = {}
    children[name] = cell
    system._stats_started += 1
    system._emit("troupe.spawned", cell.path)
    await instance.start_instance(cell, actor, spawn=True, schedule=schedule)
    ref: ActorRef[M] = cell.ref
    return ref
