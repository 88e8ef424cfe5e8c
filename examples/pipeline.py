"""A producer, a supervised pool of workers, and an aggregator.

Run it with ``troupe run examples/pipeline.py`` (or ``python examples/pipeline.py``).

- The producer (``main``) sends 20 jobs to the pool. The pool's mailbox holds
  only 2 jobs, so the producer waits whenever the pool is behind:
  that is backpressure, and nothing piles up.
- The pool hands jobs to 3 workers in turn; each worker's mailbox holds 2.
- One job is poisoned on purpose: the worker that gets it crashes. Its
  supervisor (the pool) restarts it, the poisoned job is counted as a dead
  letter, and the other jobs carry on.
- The aggregator adds up the squares and answers when all are in.
"""

from __future__ import annotations

import trio

import troupe


@troupe.message
class Job:
    n: int
    poisoned: bool = False


@troupe.message
class Squared:
    n: int
    value: int
    worker: str


@troupe.message
class WaitForResults:
    count: int


class Aggregator(troupe.Actor[Squared | WaitForResults]):
    """Adds up results; answers ``WaitForResults`` once enough have arrived."""

    def __init__(self) -> None:
        self.total = 0
        self.received = 0
        self.waiting: list[tuple[int, troupe.Reply[int]]] = []

    async def receive(self, msg: Squared | WaitForResults) -> int | None:
        match msg:
            case Squared(n=n, value=value, worker=worker):
                self.total += value
                self.received += 1
                print(f"  aggregator: {worker} says {n}^2 = {value} (running total {self.total})")
            case WaitForResults(count=count):
                self.waiting.append((count, self.context.defer_reply()))
        for count, reply in list(self.waiting):
            if self.received >= count:
                reply.send(self.total)
                self.waiting.remove((count, reply))
        return None


class Worker(troupe.Actor[Job]):
    """Squares numbers; a poisoned job makes it crash."""

    def __init__(self, aggregator: troupe.ActorRef[Squared | WaitForResults]) -> None:
        self.aggregator = aggregator

    async def on_start(self) -> None:
        print(f"  {self.ref.name}: ready")

    async def receive(self, msg: Job) -> None:
        if msg.poisoned:
            print(f"  {self.ref.name}: job {msg.n} is poisoned, crashing on purpose!")
            raise ValueError(f"poisoned job {msg.n}")
        await trio.sleep(0.01)  # pretend to work
        await self.aggregator.tell(Squared(msg.n, msg.n * msg.n, self.ref.name))


class Pool(troupe.Actor[Job]):
    """Supervises the workers and hands each job to the next one."""

    supervisor: troupe.SupervisorStrategy = troupe.OneForOne(max_restarts=3, within=5.0)

    def __init__(self, aggregator: troupe.ActorRef[Squared | WaitForResults], size: int) -> None:
        self.aggregator = aggregator
        self.size = size
        self.workers: list[troupe.ActorRef[Job]] = []
        self.next = 0

    async def on_start(self) -> None:
        small = troupe.Mailbox(capacity=2)
        for i in range(1, self.size + 1):
            worker = await self.context.spawn(
                lambda: Worker(self.aggregator), name=f"worker-{i}", mailbox=small
            )
            self.workers.append(worker)

    async def receive(self, msg: Job) -> None:
        worker = self.workers[self.next % len(self.workers)]
        self.next += 1
        await worker.tell(msg)  # waits while that worker's mailbox is full


async def main(system: troupe.ActorSystem) -> int:
    print("Starting an aggregator and a pool of 3 workers.")
    aggregator = await system.spawn(Aggregator, name="aggregator")
    pool = await system.spawn(
        lambda: Pool(aggregator, size=3), name="pool", mailbox=troupe.Mailbox(capacity=2)
    )
    async with system.events.listen("troupe.restarted") as restarts:
        print("Sending 20 jobs (job 7 is poisoned).")
        for n in range(1, 21):
            await pool.tell(Job(n, poisoned=(n == 7)))
        total = await aggregator.ask(WaitForResults(count=19), timeout=30)
        restarted = restarts.receive_nowait()
    expected = sum(n * n for n in range(1, 21) if n != 7)
    print()
    print(f"{restarted.data} crashed and was restarted by its supervisor, the pool.")
    print(f"The poisoned job went to dead letters: {system.dead_letters.count} dead letter(s).")
    print(f"Sum of squares of 1..20 without 7: {total} (expected {expected}).")
    return int(total)


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
