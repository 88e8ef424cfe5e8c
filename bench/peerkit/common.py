"""What a workload returns, and how memory is read."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

BURST = 256
"""Messages an async sender queues before it yields once to the scheduler."""


@dataclass(frozen=True)
class Run:
    """One timed run of one workload on one contender."""

    seconds: float
    """Wall time of the timed part."""
    count: int
    """What the actors counted (messages handled, answers received, actors started)."""
    bytes_per_actor: float | None = None
    """Spawn runs only: peak RSS growth divided by the actors started."""

    @property
    def rate(self) -> float:
        """``count`` per second."""
        return self.count / self.seconds


def lead(ours: list[float], theirs: list[float], *, lower_is_better: bool = False) -> float | None:
    """troupe's lead from the medians: above 1 means troupe is ahead (faster, or lighter).

    None when it cannot be told: a side has no figures, or a median to
    divide by is zero (a tiny run may grow no memory at all).
    """
    if not ours or not theirs:
        return None
    a, b = statistics.median(ours), statistics.median(theirs)
    top, bottom = (b, a) if lower_is_better else (a, b)
    return top / bottom if bottom else None


def rss_bytes() -> int:
    """This process's resident set size now."""
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    msg = "no VmHWM line in /proc/self/status: peak memory is read on Linux only"
    raise RuntimeError(msg)


def thread_limit() -> int:
    """How many threads this machine lets one process start, roughly.

    Pykka gives every actor an OS thread, and each thread takes a process
    id: ``kernel.pid_max``, ``kernel.threads-max`` and ``RLIMIT_NPROC``
    all bound it.
    """
    limits = [resource.getrlimit(resource.RLIMIT_NPROC)[0]]
    for name in ("pid_max", "threads-max"):
        path = Path("/proc/sys/kernel") / name
        if path.exists():
            limits.append(int(path.read_text()))
    finite = [x for x in limits if x != resource.RLIM_INFINITY and x > 0]
    return min(finite) if finite else 1 << 30


class Unsupported(Exception):
    """A contender cannot run a workload of this size on this machine; the message says why."""


def versions(*dists: str) -> dict[str, str]:
    """Python's version and each distribution's (``"not installed"`` for one that is not)."""
    found = {"python": platform.python_version()}
    for dist in dists:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def machine() -> dict[str, str]:
    """The CPU's model name, the core count and the operating system, for a report's header."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": str(os.cpu_count()), "system": f"{platform.system()} {platform.release()}"}


def bench_parser(
    doc: str | None,
    contenders: list[str],
    kinds: list[str] | None = None,
    *,
    only: str = "contenders to run (default: all)",
    repeat: int = 5,
) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: --repeat, --scale, --only, --json (--kinds)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeat", type=int, default=repeat, help=f"runs per workload and contender (default {repeat})"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every workload's size (0.1: quick)"
    )
    parser.add_argument("--only", nargs="+", choices=contenders, help=only)
    if kinds is not None:
        parser.add_argument("--kinds", nargs="+", choices=kinds, help="workloads to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write every run to this file")
    return parser


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a benchmark's figures (folders made as needed) and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nwrote {path}")


def run_header(repeat: int, versions: dict[str, str]) -> dict[str, Any]:
    """What every benchmark's JSON starts with: when, how many rounds, on what machine, which versions."""
    return {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "repeat": repeat,
        "machine": machine(),
        "versions": versions,
    }
