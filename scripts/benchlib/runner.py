"""The measuring loop: start every server, check its answers, then run dnsperf against each in
turn, run after run, so that slow drift on a shared machine touches every server alike."""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.benchlib import dnsperf
from scripts.benchlib.answers import check_answers
from scripts.benchlib.compaction import measure_compaction
from scripts.benchlib.cpu import CpuSample
from scripts.benchlib.dnsperf import Mode
from scripts.benchlib.repair import measure_repair
from scripts.benchlib.replication import measure_replication
from scripts.benchlib.results import Measurement, Plan, Result
from scripts.benchlib.servers import STARTERS, Server
from scripts.benchlib.wakeup import measure_wakeup
from scripts.benchlib.workload import Workload

STARTUP_ESTIMATE = 15.0


class Progress:
    """Progress lines on stderr, each with the time since the bench started."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {message}", file=sys.stderr, flush=True)


def estimated_seconds(plan: Plan) -> float:
    passes = len(plan.servers) * len(plan.modes)
    per_run = plan.seconds + plan.latency_seconds
    return STARTUP_ESTIMATE + passes * (plan.warmup + plan.runs * per_run)


def _workload_summary(workload: Workload) -> dict[str, Any]:
    mix = workload.mix()
    total = len(workload.queries)
    return {
        "origin": workload.origin.to_text(),
        "records": workload.records(),
        "queries": total,
        "mix": {str(kind): count for kind, count in mix.items()},
        "mix_shares": {str(kind): count / total for kind, count in mix.items()},
    }


def measure(server: Server, mode: Mode, plan: Plan, data: Path, run: int) -> Measurement:
    """One throughput run (QPS, CPU per query) and one fixed-rate latency run."""
    before = CpuSample.take(server.pid)
    started = time.monotonic()
    argv = dnsperf.command(server.port, data, plan.seconds, mode, plan.load)
    summary = dnsperf.parse_summary(dnsperf.run(argv))
    used = CpuSample.take(server.pid).since(before)
    elapsed = time.monotonic() - started
    argv = dnsperf.command(
        server.port, data, plan.latency_seconds, mode, plan.load, rate=plan.latency_rate
    )
    latencies = dnsperf.parse_latencies(dnsperf.run(argv))

    def milliseconds(fraction: float) -> float | None:
        value = latencies.percentile(fraction)
        return None if math.isinf(value) else value * 1000

    return Measurement(
        server=server.name,
        mode=mode,
        run=run,
        qps=summary.qps,
        sent=summary.sent,
        completed=summary.completed,
        lost=summary.lost,
        cpu_us_per_query=used.server / summary.completed * 1e6 if summary.completed else None,
        average_latency_ms=summary.average_latency * 1000,
        p50_ms=milliseconds(0.5),
        p99_ms=milliseconds(0.99),
        latency_queries=len(latencies.seconds) + latencies.unanswered,
        latency_timeouts=latencies.unanswered,
        client_cpu_cores=used.client / elapsed,
        other_cpu_cores=used.other / elapsed,
        rcodes=summary.rcodes,
    )


def _describe(measurement: Measurement) -> str:
    cpu = measurement.cpu_us_per_query
    p99 = measurement.p99_ms
    return (
        f"{measurement.qps:,.0f} q/s, "
        f"{'-' if cpu is None else f'{cpu:.1f}'} µs CPU/query, "
        f"p99 {'timeout' if p99 is None else f'{p99:.2f} ms'}, lost {measurement.lost}"
    )


def run_bench(plan: Plan, workload: Workload, workdir: Path, progress: Progress) -> Result:
    data = workdir / "queries.txt"
    data.write_text(workload.query_text())
    result = Result(
        meta={
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "dnsperf": dnsperf.version(),
            "versions": {},
        },
        plan=plan,
        workload=_workload_summary(workload),
    )
    with ExitStack() as stack:
        servers = []
        for name in plan.servers:
            progress(f"starting {name}")
            server = stack.enter_context(STARTERS[name](workdir, workload))
            result.meta["versions"][name] = server.version
            progress(f"{name} serves {workload.origin} on 127.0.0.1:{server.port}")
            check = check_answers(name, server.port, workload.distinct_queries())
            progress(f"{name}: {check.unexpected} of {check.checked} answers not as expected")
            result.checks.append(check)
            servers.append(server)
        if plan.warmup > 0:
            for mode in plan.modes:
                for server in servers:
                    progress(f"warm-up {mode} {server.name} ({plan.warmup:g} s)")
                    argv = dnsperf.command(server.port, data, plan.warmup, mode, plan.load)
                    dnsperf.run(argv)
        for run in range(1, plan.runs + 1):
            shift = (run - 1) % len(servers)
            order = servers[shift:] + servers[:shift]
            for mode in plan.modes:
                for server in order:
                    progress(f"run {run}/{plan.runs} {mode} {server.name}")
                    measurement = measure(server, mode, plan, data, run)
                    result.measurements.append(measurement)
                    progress(
                        f"run {run}/{plan.runs} {mode} {server.name}: {_describe(measurement)}"
                    )
        progress("stopping servers")
    result.replication = measure_replication(workdir, workload)
    result.replication += measure_wakeup(workdir, progress)
    result.repair = measure_repair(progress)
    result.compaction = measure_compaction(workdir, progress)
    return result
