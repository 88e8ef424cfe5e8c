"""A worker node for the cross-process tests: it registers "counter" and "echo" and reports on stdout.

Usage: python node_worker.py URL NODE [--token TOKEN] [--max-payload BYTES]

It joins cluster ``procs`` at URL as NODE (heartbeat 0.2 s, failure
timeout 1 s) and prints one line per event, flushed at once:

- ``ready NODE_ID`` once both names are registered (the server confirmed them);
- ``dead {json}`` for each dead letter of this node: its ``reason``,
  ``recipient``, message ``type`` and, for an unreadable one, its
  ``unreadable`` reason and ``size``;
- ``disconnected`` and ``connected`` when the connection to the server
  drops and comes back;
- once stdin is closed or SIGTERM arrives: ``count N`` (the Add messages
  its counter processed), ``received [...]`` (the Seq numbers, in the order
  they were processed), then ``bye`` once the node has left the cluster;
  the exit status is 0.

A failure to join (server unreachable, wrong token) is one line on stderr
and exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
from messages import Add, Echo, Get, Ping, Pong, Received, Seq, config

import troupe


def say(*parts: object) -> None:
    """One line on stdout, flushed (the test reads it to know what happened)."""
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


class Counter(troupe.Actor[Add | Get | Seq | Ping | Received]):
    """Counts Add messages, keeps Seq numbers, answers Pings through their reply_to."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.total = 0
        self.adds = 0
        self.seen: list[int] = []

    async def receive(self, msg: Add | Get | Seq | Ping | Received) -> Any:
        match msg:
            case Add(n=n):
                self.total += n
                self.adds += 1
            case Seq(i=i):
                self.seen.append(i)
            case Get():
                return {"total": self.total, "adds": self.adds, "seqs": len(self.seen)}
            case Ping(n=n, reply_to=reply_to):
                via = f"{type(reply_to).__name__} {getattr(reply_to, 'path', '?')}"
                await reply_to.tell(Pong(n, self.node, via))
            case Received():
                return list(self.seen)
        return None


class Echoer(troupe.Actor[Echo]):
    """Answers ``TEXT from NODE``; raises ValueError for ``crash``."""

    def __init__(self, node: str) -> None:
        self.node = node

    async def receive(self, msg: Echo) -> str:
        if msg.text == "crash":
            raise ValueError(f"asked to crash on {self.node}")
        return f"{msg.text} from {self.node}"


async def report_dead_letters(letters: trio.MemoryReceiveChannel[troupe.DeadLetter]) -> None:
    async for letter in letters:
        message = letter.message
        line: dict[str, Any] = {
            "reason": letter.reason.name,
            "recipient": letter.recipient,
            "type": type(message).__name__,
        }
        if isinstance(message, troupe.UnreadableMessage):
            line["unreadable"] = message.reason
            line["size"] = message.size
        say("dead", json.dumps(line))


async def report_connection(cluster: troupe.ClusterHandle) -> None:
    while True:
        await cluster.wait_connected(connected=False, timeout=math.inf)
        say("disconnected")
        await cluster.wait_connected(timeout=math.inf)
        say("connected")


async def until_stdin_closed() -> None:
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
        while await stdin.receive_some():
            pass


async def until_told_to_stop(signals: AsyncIterator[int]) -> None:
    """Return once stdin is closed or SIGTERM arrived."""
    async with trio.open_nursery() as nursery:

        async def first(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        async def signalled() -> None:
            async for _ in signals:
                return

        nursery.start_soon(first, until_stdin_closed)
        nursery.start_soon(first, signalled)


async def serve(system: troupe.ActorSystem, node: str) -> None:
    cluster = system.cluster
    counter = await system.spawn(
        lambda: Counter(node), name="counter", mailbox=troupe.Mailbox(capacity=10_000)
    )
    echo = await system.spawn(lambda: Echoer(node), name="echo")
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with system.dead_letters.listen() as letters, trio.open_nursery() as nursery:
            nursery.start_soon(report_dead_letters, letters)
            nursery.start_soon(report_connection, cluster)
            await cluster.register("counter", counter)
            await cluster.register("echo", echo)
            say("ready", cluster.node_id)
            await until_told_to_stop(signals)
            say("count", (await counter.ask(Get()))["adds"])
            say("received", json.dumps(await counter.ask(Received())))
            nursery.cancel_scope.cancel()


async def main(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"token": args.token}
    if args.max_payload is not None:
        options["max_payload"] = args.max_payload
    try:
        async with troupe.open_system(
            name=args.node, cluster=config(args.url, args.node, **options)
        ) as system:
            await serve(system, args.node)
    except troupe.ClusterError as exc:
        sys.stderr.write(f"node_worker {args.node}: {exc}\n")
        return 1
    say("bye")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url")
    parser.add_argument("node")
    parser.add_argument("--token")
    parser.add_argument("--max-payload", type=int)
    sys.exit(trio.run(functools.partial(main, parser.parse_args())))
