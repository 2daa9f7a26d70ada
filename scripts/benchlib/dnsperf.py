"""Running dnsperf (2.10) and reading what it prints.

dnsperf 2.10 reports only the average and the standard deviation of the latency; it has no
histogram option. Its verbose mode (``-v``) prints every response with its latency, which
gives exact percentiles, but writing those lines halves the rate dnsperf can send. So the
throughput runs are not verbose, and latency percentiles come from a separate verbose run at
a fixed query rate (``-Q``) that every server should sustain.
"""

from __future__ import annotations

import enum
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DNSPERF = "dnsperf"


class Mode(enum.StrEnum):
    """How queries are sent: dnsperf's ``-D`` sets the DO bit and implies EDNS0."""

    PLAIN = "plain"
    EDNS_DO = "edns-do"

    @property
    def flags(self) -> list[str]:
        return ["-e", "-D"] if self == Mode.EDNS_DO else []


@dataclass(frozen=True)
class Load:
    """dnsperf's load shape: ``-c`` clients, ``-T`` threads, ``-q`` queries outstanding."""

    clients: int = 10
    threads: int = 2
    outstanding: int = 100

    def flags(self) -> list[str]:
        return ["-c", str(self.clients), "-T", str(self.threads), "-q", str(self.outstanding)]


@dataclass(frozen=True)
class Summary:
    """dnsperf's closing statistics."""

    sent: int
    completed: int
    lost: int
    qps: float
    average_latency: float
    """Seconds; 0 when nothing completed."""
    rcodes: dict[str, int]


@dataclass(frozen=True)
class Latencies:
    """Per-response latencies (seconds) from a verbose run, and queries never answered."""

    seconds: tuple[float, ...]
    unanswered: int

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile over all queries, an unanswered one counting as infinite."""
        values = sorted(self.seconds)
        total = len(values) + self.unanswered
        if total == 0:
            raise ValueError("no queries in the latency run")
        rank = max(1, math.ceil(fraction * total))
        return values[rank - 1] if rank <= len(values) else math.inf


def command(
    port: int,
    data: Path,
    seconds: float,
    mode: Mode,
    load: Load,
    rate: int | None = None,
) -> list[str]:
    """The dnsperf command line; with ``rate``, a verbose run limited to that many q/s."""
    argv = [DNSPERF, "-s", "127.0.0.1", "-p", str(port), "-d", str(data), "-l", f"{seconds:g}"]
    argv += [*load.flags(), *mode.flags]
    if rate is not None:
        argv += ["-Q", str(rate), "-v"]
    return argv


def run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 or "Statistics:" not in result.stdout:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return result.stdout


def version() -> str:
    result = subprocess.run([DNSPERF, "-h"], capture_output=True, text=True, check=False)
    found = re.search(r"^Version (\S+)", result.stdout + result.stderr, re.MULTILINE)
    return found.group(1) if found else "unknown"


def _field(text: str, label: str, pattern: str = r"(\d+)") -> str:
    found = re.search(rf"^\s*{re.escape(label)}:\s*{pattern}", text, re.MULTILINE)
    if found is None:
        raise ValueError(f"dnsperf output has no {label!r} line:\n{text[-2000:]}")
    return found.group(1)


def parse_summary(text: str) -> Summary:
    rcodes_text = _field(text, "Response codes", r"(.*)$")
    rcodes = {code: int(count) for code, count in re.findall(r"(\w+) (\d+) \(", rcodes_text)}
    return Summary(
        sent=int(_field(text, "Queries sent")),
        completed=int(_field(text, "Queries completed")),
        lost=int(_field(text, "Queries lost")),
        qps=float(_field(text, "Queries per second", r"([\d.]+)")),
        average_latency=float(_field(text, "Average Latency (s)", r"([\d.]+)")),
        rcodes=rcodes,
    )


def parse_latencies(text: str) -> Latencies:
    """Verbose lines are ``> RCODE NAME TYPE LATENCY``, ``> T NAME TYPE`` for a query that
    timed out, and ``> I NAME TYPE`` for one still waiting when the run ended (not counted)."""
    seconds: list[float] = []
    unanswered = 0
    for line in text.splitlines():
        if not line.startswith("> "):
            continue
        fields = line.split()
        if fields[1] == "T":
            unanswered += 1
        elif fields[1] != "I":
            seconds.append(float(fields[-1]))
    return Latencies(tuple(seconds), unanswered)
