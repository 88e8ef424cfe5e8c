"""Kore's tasks in troupe: a task with a two-way channel to its owner.

Run it with ``troupe run examples/kore_channel.py`` (or ``python examples/kore_channel.py``).

1. The Kore document's flow: the owner writes a request to the task; the task
   reads at most 64 bytes of it and sees that it was truncated; it answers;
   the owner reads the answer after the task has finished.
2. A long task streams its progress through a bound callback: one call per
   message it writes, and one when it finishes.
3. The same progress, read through ``t.events()`` (the bound request an
   HTTP handler would await).
"""

from __future__ import annotations

import trio

import troupe


async def answer_request(ctx: troupe.TaskContext) -> None:
    """Read at most 64 bytes of the owner's request and answer it."""
    data, length = await ctx.channel.read_bytes(64)
    if length > len(data):
        reply = f"truncated: read {len(data)} of {length} bytes"
    else:
        reply = f"read all {length} bytes"
    await ctx.channel.write(reply.encode())


async def long_job(ctx: troupe.TaskContext, steps: int) -> int:
    """Do ``steps`` pieces of work, reporting progress after each."""
    total = 0
    for step in range(1, steps + 1):
        await trio.sleep(0.01)  # the work
        total += step
        await ctx.channel.write(f"{100 * step // steps}%")
    return total


async def main(system: troupe.ActorSystem) -> dict[str, object]:  # noqa: ARG001 - tasks find the system themselves
    print("1. request, truncated read, answer after completion")
    t = await troupe.run_task(answer_request, channel=True)
    assert t.channel is not None
    await t.channel.write(b"GET /" + b"x" * 95)  # a 100-byte request
    await troupe.wait_all(t)
    print(f"  task finished: {t.finished}")
    answer = (await t.channel.read()).decode()
    print(f"  the task answered: {answer}")

    print("2. progress through a bound callback")
    progress: list[str] = []
    seen_the_end = trio.Event()

    def on_progress(task: troupe.TaskHandle[int]) -> None:
        assert task.channel is not None
        while True:  # drain what is waiting: Kore's callbacks do the same
            try:
                progress.append(task.channel.read_nowait())
            except (trio.WouldBlock, troupe.ChannelClosed):
                break
        if task.finished and not seen_the_end.is_set():  # later calls may also see finished
            print(f"  callback: finished, progress seen {progress}")
            seen_the_end.set()

    job = await troupe.delay_task(long_job, 4, channel=True)
    job.bind_callback(on_progress)  # bound before it starts: sees every write
    await job.execute()
    print(f"  result: {await job.result()}")
    await seen_the_end.wait()  # the callback runs in the channel's actor, on its own turn

    print("3. the same, as an event stream")
    job = await troupe.delay_task(long_job, 3, channel=True)
    events = job.events()
    await job.execute()
    async for event in events:
        if event.finished:
            print(f"  finished with result {await job.result()}")
        else:
            assert job.channel is not None
            print(f"  progress {job.channel.read_nowait()}")
    return {"answer": answer, "progress": progress}


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
