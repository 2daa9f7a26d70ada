"""The bench's report on stdout: how it was measured, one row per server and mode, and
peer53's ratios to Knot against the targets."""

from __future__ import annotations

import math

from scripts.benchlib.compaction import RECORDS
from scripts.benchlib.repair import EQUAL_ROOTS
from scripts.benchlib.replication import Figure
from scripts.benchlib.results import (
    BASELINE,
    LONG_TERM,
    SUBJECT,
    TARGET,
    Ratio,
    Result,
    Row,
    ratios,
    rows,
)
from scripts.benchlib.workload import Kind

NOISY_CORES = 0.25
KIND_LABELS = {Kind.NXDOMAIN: "NXDOMAIN", Kind.NODATA: "NODATA", Kind.CNAME: "CNAME"}
COLUMNS = (
    f"{'mode':<8} {'server':<7} {'QPS':>9} {'(min-max)':>17} {'CPU µs/q':>9} "
    f"{'p99 ms':>7} {'avg ms':>7} {'lost':>6} {'other':>6}"
)
REPAIR_COLUMNS = f"  {'keys':>11} {'differing':>9} {'seconds':>9} {'bytes':>12} {'round trips':>11}"
RATIO_COLUMNS = (
    f"{'mode':<8} {'server':<7} {'QPS':>7} {'CPU/query':>10}   "
    f"{TARGET.name} (≥ {TARGET.qps_share:.0%}, ≤ {TARGET.cpu_factor:g}x)   "
    f"{LONG_TERM.name} (≥ {LONG_TERM.qps_share:.0%}, ≤ {LONG_TERM.cpu_factor:g}x)"
)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(row: Row) -> str:
    spread = f"({row.qps_min:,.0f}-{row.qps_max:,.0f})"
    return (
        f"{row.mode:<8} {row.server:<7} {row.qps:>9,.0f} {spread:>17} "
        f"{_number(row.cpu_us_per_query, 1):>9} {_number(row.p99_ms, 2):>7} "
        f"{row.average_latency_ms:>7.2f} {row.lost:>6} {row.other_cpu_cores:>6.2f}"
    )


def _ratio(ratio: Ratio) -> str:
    cpu = "-" if math.isinf(ratio.cpu) else f"{ratio.cpu:.2f}x"
    line = f"{ratio.mode:<8} {ratio.server:<7} {ratio.qps:>7.1%} {cpu:>10}"
    if ratio.server != SUBJECT:
        return line
    target = "met" if TARGET.met(ratio) else "MISSED"
    goal = "met" if LONG_TERM.met(ratio) else "missed"
    return f"{line}   {target:<{len(TARGET.name) + 16}}   {goal}"


def _header(result: Result) -> list[str]:
    plan, meta, workload = result.plan, result.meta, result.workload
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    mix = ", ".join(
        f"{share:.1%} {KIND_LABELS.get(Kind(kind), kind)}"
        for kind, share in workload["mix_shares"].items()
    )
    answers = ", ".join(f"{check.server} {check.unexpected} wrong" for check in result.checks)
    load = plan.load
    warmup = f"after a {plan.warmup:g} s warm-up each" if plan.warmup > 0 else "no warm-up"
    runs = "1 run" if plan.runs == 1 else f"{plan.runs} runs"
    return [
        f"peer53 bench, {meta['started']}, {meta['cpus']} CPUs, "
        f"load average {meta['loadavg_at_start'][0]:.2f} at start",
        f"versions:  {versions}, dnsperf {meta['dnsperf']}",
        f"zone:      {workload['origin']}, {workload['records']:,} records",
        f"queries:   {workload['queries']:,}: {mix}",
        f"answers:   {result.checks[0].checked if result.checks else 0:,} distinct queries "
        f"asked once each before timing: {answers}",
        f"load:      dnsperf -s 127.0.0.1 -l {plan.seconds:g} -c {load.clients} "
        f"-T {load.threads} -q {load.outstanding}; edns-do adds -e -D (EDNS0, DO bit)",
        f"           {runs} per server and mode ({', '.join(plan.modes)}), servers "
        f"alternating, {warmup}",
        "CPU µs/q:  the server's utime+stime from /proc/PID/stat (whole process tree) per "
        "completed query",
        f"p99:       nearest rank over a separate dnsperf -v run at {plan.latency_rate:,} q/s "
        f"for {plan.latency_seconds:g} s (dnsperf {meta['dnsperf']} has no latency histogram; "
        "timeouts rank last)",
        "avg:       dnsperf's average latency in the throughput run",
        "other:     cores busy with neither the server nor dnsperf (other load on the machine)",
    ]


def _notes(result: Result, table: list[Row]) -> list[str]:
    notes = []
    for check in result.checks:
        if check.unexpected:
            notes.append(
                f"WARNING: {check.server} gave {check.unexpected} of {check.checked} queries "
                f"the wrong kind of answer, e.g. {'; '.join(check.examples)}"
            )
    for row in table:
        if row.unusual_rcodes:
            notes.append(f"WARNING: {row.server} {row.mode} answered {row.unusual_rcodes}")
    busiest = max((row.other_cpu_cores for row in table), default=0.0)
    if busiest > NOISY_CORES:
        notes.append(
            f"note: other processes kept up to {busiest:.2f} cores busy during the runs "
            "(median per server and mode): QPS is noisy, CPU µs/q less so"
        )
    return notes


def _repair(figures: list[Figure]) -> list[str]:
    """One row per round, from the figures' stable keys (repair.nN.kK.what)."""
    if not figures:
        return ["repair: not measured (--no-repair)"]
    value = {figure.key: figure.value for figure in figures}
    lines = [
        "repair:    one anti-entropy round between two trees in this process, real message code;",
        "           seconds: wall time of both sides' work, no network; bytes: both ways, framed,",
        "           ROOT offer included; round trips: after the ROOT offer, a last push is half",
        REPAIR_COLUMNS,
    ]
    for key in value:
        if key.endswith(".seconds"):
            stem = key.removesuffix(".seconds")
            size, differing = (int(part[1:]) for part in stem.split(".")[1:])
            lines.append(
                f"  {size:>11,} {differing:>9,} {value[key]:>9.4f} "
                f"{value[f'{stem}.bytes']:>12,.0f} {value[f'{stem}.round_trips']:>11g}"
            )
    lines.append(
        f"  equal roots: {value[EQUAL_ROOTS]:,.0f} bytes "
        "(one ROOT message with a 3-member version vector)"
    )
    return lines


def _compaction(figures: list[Figure]) -> list[str]:
    """One row per point of the curve, from the figures' stable keys
    (compaction.rN.what)."""
    if not figures:
        return ["compaction: not measured (--compaction-rewrites 0)"]
    value = {figure.key: figure.value for figure in figures}
    lines = [
        f"compaction: the same {RECORDS:,} records rewritten again and again on one node, in "
        "this process,",
        "           a compaction pass after every round of rewrites; disk: database and WAL",
        "     rewrites         disk bytes  log events  tombstones",
    ]
    for key in value:
        if key.endswith(".bytes"):
            stem = key.removesuffix(".bytes")
            lines.append(
                f"  {int(stem.split('.r')[1]):>11,} {value[key]:>18,.0f} "
                f"{value[f'{stem}.log_events']:>11,.0f} {value[f'{stem}.tombstones']:>11,.0f}"
            )
    return lines


def render(result: Result, json_path: str) -> str:
    table = rows(result.measurements)
    lines = [*_header(result), "", "medians of the runs (QPS spread in brackets):", COLUMNS]
    lines += [_row(row) for row in table]
    lines += ["", f"ratios to {BASELINE}:", RATIO_COLUMNS]
    lines += [_ratio(ratio) for ratio in ratios(table)]
    lines.append("")
    if result.replication:
        lines.append("replication:")
        lines += [
            f"  {figure.name}: {figure.value:g} {figure.unit}" for figure in result.replication
        ]
    else:
        lines.append("replication: not measured (--no-replication)")
    lines += _repair(result.repair)
    lines += _compaction(result.compaction)
    lines += _notes(result, table)
    lines.append(f"full results: {json_path}")
    return "\n".join(lines) + "\n"
