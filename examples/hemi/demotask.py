"""The Hemi Task Service document's script examples, one after the other.

1. A task with no action or handler and a named dependency.
2. An event handler, and a task whose xml action loads a document that its
   function handler reads; the first task depends on the second.
3. The "sticky" tasks: a script action that never says it is done, then a
   handler that finishes asynchronously and advances its task itself.

Run it with ``troupe run examples/hemi/demotask.py`` (or ``python
examples/hemi/demotask.py``).
"""

from __future__ import annotations

from pathlib import Path

import trio

import troupe
from troupe import TaskState

HERE = Path(__file__).parent


async def named_dependency() -> None:
    print("1. a named dependency")
    service = await troupe.new_task_service()
    task = await service.add_task("demotask")
    await service.add_dependency(task, "demodependency")
    await service.execute(task)
    print(f"   executed, still {task.state.name} because of its dependency")
    await service.return_dependency("demodependency")
    print(f"   demodependency returned: {task.state.name}")


def read_document(task_id: str, service: troupe.TaskService) -> bool:
    """demotask2's handler: the xml action stored the document on task.data."""
    xml = service.task(task_id).data
    print(f"   {task_id} handler read <{xml.tag}> from task.data")
    return True


async def event_handler(system: troupe.ActorSystem) -> None:
    print("2. an event handler, gated by a task that loads XML")
    service = await troupe.new_task_service()
    task1 = await service.add_task("demotask", handler_type="event", handler="demotaskevent")
    task2 = await service.add_task(
        "demotask2",
        action_type="xml",
        action=str(HERE / "config.xml"),
        handler_type="function",
        handler=read_document,
    )
    await service.add_dependency(task1, task2)
    async with system.events.listen("demotaskevent") as events:
        await service.execute(task1)
        print(f"   demotask executed: {task1.state.name}, waiting for demotask2")
        await service.execute(task2)
        event = await events.receive()
        print(f"   event {event.topic!r}: task {event.data.task} was {event.data.state.name}")
    print(f"   demotask {task1.state.name}, demotask2 {task2.state.name}")


async def sticky_tasks() -> None:
    print("3. stuck tasks (scripts need a trusted service)")
    service = await troupe.new_task_service(trusted=True)
    sticky = await service.add_task(
        "sticky_task1",
        action_type="script",
        action="# do something",
        handler_type="function",
        handler=lambda *_: True,
    )
    await service.execute(sticky)
    for stuck in await service.stuck():
        print(f"   stuck: {stuck.id} ({stuck.state.name}): {stuck.reason}")
    await service.advance(sticky)
    print(f"   advanced: {sticky.state.name}")

    finished = trio.Event()

    async def do_some_async_stuff(task: str) -> None:
        await finished.wait()
        await service.advance(task)  # the asynchronous work is done: move the handler on

    async with trio.open_nursery() as nursery:

        def handler(task_id: str, _: troupe.TaskService) -> None:
            nursery.start_soon(do_some_async_stuff, task_id)  # returns None: the handler does not advance

        fixed = await service.add_task(
            "sticky_task2",
            action_type="script",
            action="def RunTaskScript(task):\n    return True\n",
            handler_type="function",
            handler=handler,
        )
        await service.execute(fixed)
        print(f"   RunTaskScript returned True; the handler is still working: {fixed.state.name}")
        finished.set()
    print(f"   the handler's work advanced it: {fixed.state.name}")
    assert fixed.state is TaskState.COMPLETE


async def main(system: troupe.ActorSystem) -> None:
    await named_dependency()
    await event_handler(system)
    await sticky_tasks()


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
