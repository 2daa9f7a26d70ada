"""What one bench produces: the measurements of every run, their medians per server and mode,
and how peer53 compares with Knot against the targets in PERFORMANCE.md."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from scripts.benchlib.answers import AnswerCheck
from scripts.benchlib.dnsperf import Load, Mode
from scripts.benchlib.replication import Figure

BASELINE = "knot"
SUBJECT = "peer53"


@dataclass(frozen=True)
class Goal:
    """peer53 needs at least ``qps_share`` of Knot's QPS and at most ``cpu_factor`` times its
    CPU time per query, both as medians of the alternating runs."""

    name: str
    qps_share: float
    cpu_factor: float

    def met(self, ratio: Ratio) -> bool:
        return ratio.qps >= self.qps_share and ratio.cpu <= self.cpu_factor


TARGET = Goal("first target", 0.5, 2.5)
LONG_TERM = Goal("longer-term goal", 0.6, 2.0)


@dataclass(frozen=True)
class Plan:
    servers: tuple[str, ...]
    modes: tuple[Mode, ...]
    runs: int
    seconds: float
    warmup: float
    latency_rate: int
    latency_seconds: float
    load: Load


@dataclass(frozen=True)
class Measurement:
    server: str
    mode: Mode
    run: int
    qps: float
    sent: int
    completed: int
    lost: int
    cpu_us_per_query: float | None
    """The server's utime + stime over the run, per completed query; None if none completed."""
    average_latency_ms: float
    p50_ms: float | None
    p99_ms: float | None
    """From the fixed-rate latency run; None when that percentile is a query never answered."""
    latency_queries: int
    latency_timeouts: int
    client_cpu_cores: float
    other_cpu_cores: float
    """Cores busy with neither the server nor dnsperf: other load on the machine."""
    rcodes: dict[str, int]


def _median(values: Iterable[float | None]) -> float | None:
    """Median where None (no answer, or nothing completed) counts as worse than any value."""
    ranked = sorted(math.inf if value is None else value for value in values)
    if not ranked:
        return None
    middle = statistics.median(ranked)
    return None if math.isinf(middle) else middle


@dataclass(frozen=True)
class Row:
    """One server in one mode, over all runs."""

    server: str
    mode: Mode
    runs: int
    qps: float
    qps_min: float
    qps_max: float
    cpu_us_per_query: float | None
    p99_ms: float | None
    average_latency_ms: float
    lost: int
    other_cpu_cores: float
    unusual_rcodes: dict[str, int]

    @classmethod
    def of(cls, runs: list[Measurement]) -> Row:
        qps = [run.qps for run in runs]
        unusual: dict[str, int] = {}
        for run in runs:
            for rcode, count in run.rcodes.items():
                if rcode not in ("NOERROR", "NXDOMAIN"):
                    unusual[rcode] = unusual.get(rcode, 0) + count
        return cls(
            server=runs[0].server,
            mode=runs[0].mode,
            runs=len(runs),
            qps=statistics.median(qps),
            qps_min=min(qps),
            qps_max=max(qps),
            cpu_us_per_query=_median(run.cpu_us_per_query for run in runs),
            p99_ms=_median(run.p99_ms for run in runs),
            average_latency_ms=statistics.median(run.average_latency_ms for run in runs),
            lost=sum(run.lost for run in runs),
            other_cpu_cores=statistics.median(run.other_cpu_cores for run in runs),
            unusual_rcodes=unusual,
        )


@dataclass(frozen=True)
class Ratio:
    """A server's medians relative to Knot's in one mode."""

    server: str
    mode: Mode
    qps: float
    cpu: float


def rows(measurements: list[Measurement]) -> list[Row]:
    groups: dict[tuple[Mode, str], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.mode, measurement.server), []).append(measurement)
    return [Row.of(runs) for runs in groups.values()]


def ratios(table: list[Row]) -> list[Ratio]:
    baselines = {row.mode: row for row in table if row.server == BASELINE}
    found = []
    for row in table:
        base = baselines.get(row.mode)
        if row.server == BASELINE or base is None or not base.qps:
            continue
        if row.cpu_us_per_query is None or not base.cpu_us_per_query:
            cpu = math.inf
        else:
            cpu = row.cpu_us_per_query / base.cpu_us_per_query
        found.append(Ratio(row.server, row.mode, row.qps / base.qps, cpu))
    return found


@dataclass
class Result:
    """Everything the report shows and the JSON file keeps."""

    meta: dict[str, Any]
    plan: Plan
    workload: dict[str, Any]
    checks: list[AnswerCheck] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    replication: list[Figure] = field(default_factory=list)
    repair: list[Figure] = field(default_factory=list)
    compaction: list[Figure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        table = rows(self.measurements)
        return {
            "meta": self.meta,
            "plan": asdict(self.plan),
            "workload": self.workload,
            "answer_checks": [asdict(check) for check in self.checks],
            "runs": [asdict(measurement) for measurement in self.measurements],
            "summary": [asdict(row) for row in table],
            "ratios": [
                {
                    **asdict(ratio),
                    "cpu": None if math.isinf(ratio.cpu) else ratio.cpu,
                    **{goal.name: goal.met(ratio) for goal in (TARGET, LONG_TERM)},
                }
                for ratio in ratios(table)
            ],
            "replication": [asdict(figure) for figure in self.replication],
            "repair": [asdict(figure) for figure in self.repair],
            "compaction": [asdict(figure) for figure in self.compaction],
        }
