"""A sender node for the cross-process tests: it streams numbered Seq messages to "counter".

Usage: python node_sender.py URL NODE [--batch N]

It joins cluster ``procs`` at URL as NODE, waits for a member of
"counter", then tells ``Seq(1)``, ``Seq(2)``... to the name's group in
batches of N (default 50), each batch followed by an ask that the counter
answers once it has processed the batch (flow control: no mailbox fills
up). It prints one line per event, flushed at once:

- ``ready`` once "counter" has a member;
- ``sent I`` once the batch ending with number I was confirmed;
- ``down TEXT`` when a tell or ask first raised ClusterError (the
  connection to the server is down). It goes on telling until a tell
  raises ClusterError (at once, while disconnected: that number was not
  sent), then waits for the connection;
- ``up I`` once connected again; I is the next number it sends;
- ``summary {json}`` once stdin is closed (it stops after a confirmed
  batch): ``confirmed`` (the last number confirmed), ``failed`` (the
  numbers whose tell raised ClusterError: never sent), ``dead`` (numbers
  that became dead letters here: no member had the name at the server),
  ``resumed`` (the first number sent after the last ``up``, or null) and
  ``outages``. The exit status is 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Any

import trio
from messages import Get, Seq, config

import troupe


def say(*parts: object) -> None:
    """One line on stdout, flushed (the test reads it to know what happened)."""
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


class Stream:
    """The numbers sent so far, and what happened to them."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.next = 1
        self.confirmed = 0
        self.failed: list[int] = []
        self.resumed: int | None = None
        self.outages = 0
        self.down = False
        self.stop = trio.Event()

    async def run(self, cluster: troupe.ClusterHandle) -> None:
        sink = cluster.ref("counter", Seq | Get)
        while not self.stop.is_set():
            try:
                for _ in range(self.batch):
                    i = self.next
                    self.next += 1
                    try:
                        await sink.tell(Seq(i))
                    except troupe.ClusterError:
                        self.failed.append(i)
                        raise
                await self.confirm(sink)
                self.confirmed = self.next - 1
                say("sent", self.confirmed)
            except troupe.ClusterError as exc:
                if not self.down:
                    self.down = True
                    self.outages += 1
                    say("down", exc)
                if self.failed and self.failed[-1] == self.next - 1:
                    # A tell was refused (not connected): wait for the connection, then go on.
                    await cluster.wait_connected(timeout=60)
                    self.down = False
                    self.resumed = self.next
                    say("up", self.next)
                # else an ask failed (the connection broke while it waited): the next tell tells

    @staticmethod
    async def confirm(sink: troupe.RemoteRef[Seq | Get]) -> None:
        """Ask the counter: it answers once it processed what this node sent before (order per pair)."""
        with trio.fail_after(30):
            while True:
                try:
                    await sink.ask(Get(), timeout=10)
                except troupe.ActorStopped:
                    # Just reconnected, and the counter's node has not re-subscribed at the server yet:
                    # a bounded retry (the name has no member there for a moment).
                    await trio.sleep(0.01)
                else:
                    return


async def until_stdin_closed() -> None:
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
        while await stdin.receive_some():
            pass


async def main(args: argparse.Namespace) -> int:
    stream = Stream(args.batch)
    async with troupe.open_system(name=args.node, cluster=config(args.url, args.node)) as system:
        await system.cluster.wait_for("counter")
        async with system.dead_letters.listen() as letters, trio.open_nursery() as nursery:
            say("ready")

            async def stop_when_stdin_closes() -> None:
                await until_stdin_closed()
                stream.stop.set()

            nursery.start_soon(stop_when_stdin_closes)
            await stream.run(system.cluster)
            nursery.cancel_scope.cancel()
            dead: list[int] = []
            while True:  # every dead letter so far is in the channel (dead-lettering never waits)
                try:
                    letter = letters.receive_nowait()
                except trio.WouldBlock:
                    break
                if isinstance(letter.message, Seq):
                    dead.append(letter.message.i)
        summary: dict[str, Any] = {
            "confirmed": stream.confirmed,
            "failed": stream.failed,
            "dead": dead,
            "resumed": stream.resumed,
            "outages": stream.outages,
        }
        say("summary", json.dumps(summary))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url")
    parser.add_argument("node")
    parser.add_argument("--batch", type=int, default=50)
    sys.exit(trio.run(functools.partial(main, parser.parse_args())))
