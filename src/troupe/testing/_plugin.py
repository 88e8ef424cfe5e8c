"""The pytest plugin (registered through the ``pytest11`` entry point).

Fixtures: ``system``, ``probe``, ``assert_no_dead_letters`` and
``nats_server`` (which needs the ``cluster`` extra). They run on
pytest-trio, so use ``trio_mode = true`` (or mark tests with
``@pytest.mark.trio``).

The ``explore`` marker runs an ``async def`` test under
`troupe.testing.explore`, with fresh ``system``, ``probe``,
``assert_no_dead_letters`` and ``autojump_clock`` in every schedule;
``pytest --troupe-seed=SEED`` replays one schedule of it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from ..actors import ActorSystem, open_system
from ..protocol import DeadLetter
from ._explore import explore
from ._explore_errors import ScheduleFailure
from ._nats import nats_server  # noqa: F401 - a fixture: pytest finds it in the plugin module
from ._probe import TestProbe

_FRESH = ("system", "probe", "assert_no_dead_letters", "autojump_clock", "mock_clock")
"""The fixtures an explored test gets anew in each schedule."""
_OPTIONS = ("schedules", "strategy", "seed", "max_steps")
_ORIGINAL = "_troupe_explored"  # the test function, kept before pytest-trio wraps it


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


@asynccontextmanager
async def _no_dead_letters(system: ActorSystem) -> AsyncIterator[None]:
    """Fail if ``system`` produced dead letters inside the block."""
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


@pytest.fixture
async def assert_no_dead_letters(system: ActorSystem) -> AsyncIterator[None]:
    """Fail the test if its ``system`` produced dead letters during the test.

    Dead letters created while the system shuts down after the test do not
    count.
    """
    async with _no_dead_letters(system):
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("troupe").addoption(
        "--troupe-seed",
        type=int,
        default=None,
        metavar="SEED",
        help="run each @pytest.mark.explore test for this one schedule only "
        "(the seed a ScheduleFailure printed; the strategy comes from the marker)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "explore(schedules=200, strategy='random', seed=None, max_steps=100000): run this async test "
        "under troupe.testing.explore, once per schedule, with fresh troupe fixtures each time",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker("explore") is not None:
            setattr(item, _ORIGINAL, item.obj)
            if item.get_closest_marker("trio") is None and inspect.iscoroutinefunction(item.obj):
                item.add_marker(pytest.mark.trio)  # pytest-trio then leaves its async fixtures to us


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = getattr(pyfuncitem, _ORIGINAL, None)
    if test is None:
        return None
    _run_explored(pyfuncitem, test)
    return True


def _explore_options(item: pytest.Function) -> dict[str, Any]:
    marker = item.get_closest_marker("explore")
    assert marker is not None  # noqa: S101 - only explored items get here
    if marker.args:
        msg = f"{item.nodeid}: give @pytest.mark.explore its options by keyword ({', '.join(_OPTIONS)})"
        pytest.fail(msg, pytrace=False)
    unknown = sorted(set(marker.kwargs) - set(_OPTIONS))
    if unknown:
        taken = ", ".join(_OPTIONS)
        msg = f"{item.nodeid}: @pytest.mark.explore has no option {', '.join(unknown)}; it takes {taken}"
        pytest.fail(msg, pytrace=False)
    options = dict(marker.kwargs)
    seed = item.config.getoption("troupe_seed")
    if seed is not None:
        options.update(seed=seed, schedules=1)
    return options


def _run_explored(item: pytest.Function, test: Any) -> None:
    if not inspect.iscoroutinefunction(test):
        pytest.fail(f"{item.nodeid} is marked explore but is not an async def", pytrace=False)
    options = _explore_options(item)
    names = list(item._fixtureinfo.argnames)
    for name in names:
        defs = item._fixtureinfo.name2fixturedefs.get(name)
        func = defs[-1].func if defs else None
        if name not in _FRESH and (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
            pytest.fail(
                f"{item.nodeid}: fixture {name!r} is async; under @pytest.mark.explore every schedule is "
                f"a fresh trio run, and only troupe's own fixtures ({', '.join(_FRESH)}) are made anew "
                f"in each: open {name!r}'s resource inside the test instead",
                pytrace=False,
            )
    given = {name: item.funcargs[name] for name in names if name not in _FRESH}

    async def body() -> None:
        async with AsyncExitStack() as stack:
            fresh = await _fresh_fixtures(stack, names)
            await test(**given, **fresh)

    try:
        summary = explore(body, **options)
    except ScheduleFailure as failure:
        failure.add_note(f"replay this schedule: pytest '{item.nodeid}' --troupe-seed={failure.seed}")
        raise
    item.user_properties.append(("troupe explore", str(summary)))


async def _fresh_fixtures(stack: AsyncExitStack, names: list[str]) -> dict[str, Any]:
    """This schedule's own ``system``, ``probe``, ``assert_no_dead_letters`` and clock, as asked for."""
    fresh: dict[str, Any] = {}
    if {"system", "probe", "assert_no_dead_letters"} & set(names):
        opened = await stack.enter_async_context(open_system(name="test"))
        if "system" in names:
            fresh["system"] = opened
        if "probe" in names:
            fresh["probe"] = await TestProbe.create(opened, name="probe")
        if "assert_no_dead_letters" in names:
            await stack.enter_async_context(_no_dead_letters(opened))
            fresh["assert_no_dead_letters"] = None
    for clock in ("autojump_clock", "mock_clock"):
        if clock in names:
            fresh[clock] = trio.lowlevel.current_clock()  # explore's MockClock, which jumps when idle
    return fresh
