"""Command line of ``scripts/bench``: options, the work directory, signals, and the output."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from scripts.benchlib import compaction, repair
from scripts.benchlib.dnsperf import Load, Mode
from scripts.benchlib.replication import DEFAULT, MAX_BATCH, NONE, PLAN, ReplicationPlan
from scripts.benchlib.report import render
from scripts.benchlib.results import BASELINE, Plan
from scripts.benchlib.runner import Progress, estimated_seconds, run_bench
from scripts.benchlib.servers import STARTERS
from scripts.benchlib.workload import build_workload

ROOT = Path(__file__).resolve().parents[2]


def _names(text: str, allowed: list[str]) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
    return names


def _counts(text: str, least: int, what: str, example: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(count) for count in text.split(",") if count.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < least:
        raise argparse.ArgumentTypeError(f"give {what} of {least} or more, e.g. {example}")
    return counts


def _sizes(text: str) -> tuple[int, ...]:
    return _counts(text, 2, "node counts", "3,5")


def _key_counts(text: str) -> tuple[int, ...]:
    """Each size is repaired with up to ``max(DIFFERENCES)`` keys differing."""
    return _counts(text, max(repair.DIFFERENCES), "key counts", "100000")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="dnsperf against peer53 and Knot (optionally NSD) on one zone and query "
        "mix, alternating servers, then peer53's replication figures on clusters it forms, "
        "then what anti-entropy repair costs and how disk use behaves under churn with "
        "compaction (both in-process); a report on stdout and all figures as JSON",
    )
    add = parser.add_argument
    add("--runs", type=int, default=5, help="runs per server and mode (default 5)")
    add("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    add(
        "--servers",
        type=lambda text: _names(text, list(STARTERS)),
        default=("knot", "peer53"),
        help="comma-separated, from knot, nsd, peer53 (default knot,peer53; knot is required)",
    )
    add(
        "--modes",
        type=lambda text: tuple(Mode(name) for name in _names(text, [m.value for m in Mode])),
        default=tuple(Mode),
        help="plain, edns-do (EDNS0 with the DO bit), or both (default both)",
    )
    add("--warmup", type=float, default=1.0, help="unrecorded seconds per server and mode")
    add("--latency-rate", type=int, default=20_000, help="q/s of the p99 run (default 20000)")
    add("--latency-seconds", type=float, default=3.0, help="length of the p99 run (default 3)")
    add("--clients", type=int, default=10, help="dnsperf -c (default 10)")
    add("--threads", type=int, default=2, help="dnsperf -T (default 2)")
    add("--outstanding", type=int, default=100, help="dnsperf -q (default 100)")
    add("--queries", type=int, default=10_000, help="queries in the data file (default 10000)")
    add("--seed", type=int, default=53, help="seed of the query mix")
    add("--json", type=Path, help="where to write the results (default bench-results/...)")
    add("--keep", action="store_true", help="keep the work directory (zone, queries, logs)")
    add("--no-replication", action="store_true", help="skip the replication figures")
    add(
        "--replication-sizes",
        type=_sizes,
        default=DEFAULT.sizes,
        help="cluster sizes whose propagation latency is measured "
        f"(default {','.join(map(str, DEFAULT.sizes))})",
    )
    add(
        "--replication-writes",
        type=int,
        default=DEFAULT.writes,
        help=f"writes per cluster size for the propagation latency; 0 skips it "
        f"(default {DEFAULT.writes})",
    )
    add(
        "--replication-rate",
        type=float,
        default=DEFAULT.rate,
        help=f"writes/s of the propagation run (default {DEFAULT.rate:g})",
    )
    add(
        "--replication-changes",
        type=int,
        default=DEFAULT.changes,
        help=f"record changes of the 3-node throughput run; 0 skips it (default {DEFAULT.changes})",
    )
    add(
        "--replication-batch",
        type=int,
        default=DEFAULT.batch,
        help=f"record changes per API request of the throughput run (default {DEFAULT.batch})",
    )
    add("--no-repair", action="store_true", help="skip the anti-entropy repair figures")
    add(
        "--repair-sizes",
        type=_key_counts,
        default=repair.DEFAULT.sizes,
        help="keys per tree for the repair figures, each repaired with "
        f"{', '.join(map(str, repair.DIFFERENCES))} keys differing "
        f"(default {','.join(map(str, repair.DEFAULT.sizes))})",
    )
    add(
        "--compaction-rewrites",
        type=int,
        default=compaction.DEFAULT.rewrites,
        help=f"record rewrites of the disk-use curve, a multiple of {compaction.RECORDS}; "
        f"0 skips it (default {compaction.DEFAULT.rewrites:,})",
    )
    return parser


def _replication_plan(
    args: argparse.Namespace, parser: argparse.ArgumentParser, progress: Callable[[str], None]
) -> ReplicationPlan:
    if args.no_replication:
        return NONE
    if args.replication_writes < 0 or args.replication_changes < 0:
        parser.error("--replication-writes and --replication-changes must be 0 or more")
    if args.replication_rate <= 0 or not 1 <= args.replication_batch <= MAX_BATCH:
        parser.error(f"--replication-rate must be positive, --replication-batch 1-{MAX_BATCH}")
    return ReplicationPlan(
        sizes=args.replication_sizes,
        writes=args.replication_writes,
        rate=args.replication_rate,
        changes=args.replication_changes,
        batch=args.replication_batch,
        progress=progress,
    )


def _repair_plan(args: argparse.Namespace) -> repair.RepairPlan:
    return repair.NONE if args.no_repair else repair.RepairPlan(sizes=args.repair_sizes)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    """Turn SIGINT/SIGTERM into an exception so every started server is stopped; a second
    signal is ignored rather than cutting that clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if BASELINE not in args.servers:
        parser.error(f"--servers must include {BASELINE}: every figure is relative to it")
    if args.runs < 1 or args.seconds <= 0 or args.latency_seconds <= 0 or args.queries < 100:
        parser.error("--runs, --seconds and --latency-seconds must be positive, --queries ≥ 100")
    plan = Plan(
        servers=args.servers,
        modes=args.modes,
        runs=args.runs,
        seconds=args.seconds,
        warmup=args.warmup,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        load=Load(args.clients, args.threads, args.outstanding),
    )
    progress = Progress()
    replication = _replication_plan(args, parser, progress)
    PLAN.set(replication)
    repair_plan = _repair_plan(args)
    repair.PLAN.set(repair_plan)
    if args.compaction_rewrites < 0 or args.compaction_rewrites % compaction.RECORDS:
        parser.error(f"--compaction-rewrites must be a multiple of {compaction.RECORDS}")
    compaction_plan = compaction.CompactionPlan(rewrites=args.compaction_rewrites)
    compaction.PLAN.set(compaction_plan)
    seconds = (
        estimated_seconds(plan)
        + replication.estimated_seconds()
        + repair_plan.estimated_seconds()
        + compaction_plan.estimated_seconds()
    )
    json_path = args.json or ROOT / "bench-results" / time.strftime("bench-%Y%m%dT%H%M%S.json")
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="peer53-bench-"))
    keep = args.keep
    try:
        progress(f"work directory {workdir}; about {seconds / 60:.1f} minutes")
        workload = build_workload(args.queries, args.seed)
        result = run_bench(plan, workload, workdir, progress)
    except KeyboardInterrupt:
        print("bench: interrupted; every server it started is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        keep = True  # the servers' logs say why
        return 1
    finally:
        if keep:
            print(f"bench: kept {workdir}, with every server's log", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    shown = json_path.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    sys.stdout.write(render(result, str(shown)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
