"""The Hemi document's ExampleProcess, declared in page_load.xml (and page_load.json).

The task list says what waits for what; this module holds only the
functions it names and, in ``main``, what a page would do: load the list,
start ExampleProcess, and return ``dom_event_window_load`` when its window
has loaded. Run it with ``troupe run examples/hemi/page_load.py`` (or
``python examples/hemi/page_load.py``).
"""

from __future__ import annotations

from pathlib import Path

import trio

import troupe

HERE = Path(__file__).parent
ORDER = ["load_config", "create_object", "setup_object", "ExampleProcess"]


def createMyObject(task_id: str, service: troupe.TaskService) -> bool:  # noqa: N802 - the document's name
    """Make the object from the configuration load_config read."""
    config = service.task("load_config").data
    url = config.find("data").get("url")
    print(f"  {task_id}: making the object for {url}")
    return True


def setupExampleObject(task_id: str, service: troupe.TaskService) -> bool:  # noqa: N802, ARG001
    """Set the object up: runs only once the window has loaded."""
    print(f"  {task_id}: setting the object up")
    return True


def allDone(task_id: str, service: troupe.TaskService) -> bool:  # noqa: N802, ARG001
    """The process's handler: everything it depends on is complete."""
    print(f"  {task_id}: all done")
    return True


FUNCTIONS = {"createMyObject": createMyObject, "setupExampleObject": setupExampleObject, "allDone": allDone}


async def show(service: troupe.TaskService) -> None:
    states = [f"{task_id}={(await service.state(task_id)).name}" for task_id in ORDER]
    print("  states: " + ", ".join(states))


async def page(file: Path) -> None:
    print(f"loading {file.name}")
    service = await troupe.new_task_service(functions=FUNCTIONS)
    await service.load(file)
    await show(service)
    await service.execute("ExampleProcess")
    for stuck in await service.stuck():
        print(f"  waiting: {stuck.id}: {stuck.reason}")
    print("  the window has loaded")
    await service.return_dependency("dom_event_window_load")
    await show(service)


async def main(system: troupe.ActorSystem) -> None:  # noqa: ARG001 - troupe run passes the system
    await page(HERE / "page_load.xml")
    await page(HERE / "page_load.json")


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
