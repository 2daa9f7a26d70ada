"""CPU time from /proc: a server's own, and the whole machine's.

A server's CPU time per query is much less noisy than its QPS on a shared machine, so it is
the figure to compare. The machine's busy time, less the server's and dnsperf's, shows how
much else was running during a measurement.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Field positions in /proc/PID/stat counted after the ")" that ends the command name.
_PPID, _UTIME, _STIME = 1, 11, 12
# /proc/stat "cpu" line: user nice system idle iowait irq softirq steal (guest is in user).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants: NSD forks its servers, and a server may fork workers."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[_PPID]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def process_tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants (every thread of each)."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[_UTIME]) + int(fields[_STIME])
    return ticks / TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle since boot."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[index]) for index in _BUSY_FIELDS) / TICKS_PER_SECOND


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (dnsperf, once it has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSample:
    server: float
    client: float
    machine: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        return cls(
            process_tree_cpu_seconds(server_pid), children_cpu_seconds(), machine_busy_seconds()
        )

    def since(self, earlier: CpuSample) -> CpuSample:
        return CpuSample(
            self.server - earlier.server,
            self.client - earlier.client,
            self.machine - earlier.machine,
        )

    @property
    def other(self) -> float:
        """CPU time used by neither the server nor dnsperf (other load, and the bench)."""
        return max(0.0, self.machine - self.server - self.client)
