"""Compaction figures: disk use while the same 1,000 records are rewritten again and again.

Measured in this process on one node with the real write path, SQLite file and compactor:
every round gives each record a new address (one event, so every rewrite leaves a
tombstone and an unreferenced event behind), then one compaction pass runs, as a node's
compactor does every ``compact_interval_ms``, and a checkpoint of the WAL, as a node does
every second. On one node the floor is its own vector, so what a pass may delete is what
a cluster whose members all keep up may delete. The figures
are the size of the SQLite files (database and WAL) and the log and tombstone counts, at
evenly spaced points of the run: a bounded log shows as a flat curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rrset
import trio

from node.bootstrap import initialise
from node.config import NodeConfig
from node.replication.compaction import Compactor
from node.replication.snapshots import Snapshots
from node.service import DB_FILE, NodeState
from scripts.benchlib.replication import Figure

RECORDS = 1000
ORIGIN = dns.name.from_text("churn.test.")
NAMES = [dns.name.from_text(f"h{i}", ORIGIN) for i in range(RECORDS)]
_ADDRESS: Callable[..., dns.rdata.Rdata] = dns.rdtypes.IN.A.A  # no tokenizer: quicker
SECONDS_PER_REWRITE = 0.5e-3
"""Rough, for the bench's estimate."""


@dataclass(frozen=True)
class CompactionPlan:
    rewrites: int = 1_000_000
    points: int = 20
    """How many points of the size curve are reported."""

    def estimated_seconds(self) -> float:
        return self.rewrites * SECONDS_PER_REWRITE


DEFAULT = CompactionPlan()
PLAN: ContextVar[CompactionPlan] = ContextVar("compaction_plan", default=DEFAULT)
"""What ``measure_compaction`` measures; the bench's command line sets it."""


@dataclass(frozen=True)
class Sample:
    rewrites: int
    disk_bytes: int
    log_events: int
    tombstones: int


def disk_bytes(data_dir: Path) -> int:
    """The database and its WAL: what the node holds on disk."""
    return sum(path.stat().st_size for path in data_dir.glob(f"{DB_FILE}*"))


def _changes(round_: int) -> dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset]:
    changes = {}
    for i, name in enumerate(NAMES):
        address = f"10.{round_ % 250}.{i // 250}.{i % 250}"
        rdata = _ADDRESS(dns.rdataclass.IN, dns.rdatatype.A, address)
        changes[(name, dns.rdatatype.A)] = dns.rrset.from_rdata(name, 300, rdata)
    return changes


async def churn(data_dir: Path, rounds: int, on_round: Callable[[Sample], None]) -> NodeState:
    """Rewrite every record ``rounds`` times on the initialised node at ``data_dir``, with a
    compaction pass after each round; the node is returned open."""
    state = NodeState.open(data_dir)
    ns = [dns.name.from_text("ns1", ORIGIN)]
    await state.write("zone.create", lambda: state.editor.create_zone(ORIGIN, ns, 3600, 1))
    compactor = Compactor(state, {}, Snapshots(state), lambda: [])
    for round_ in range(rounds):
        changes = _changes(round_)
        await state.write("rrset.put", lambda: state.editor.change_rrsets(ORIGIN, changes))  # noqa: B023
        await compactor.compact()
        await trio.to_thread.run_sync(state.db.checkpoint)
        sizes = compactor.stats.sizes
        sample = Sample(
            (round_ + 1) * RECORDS, disk_bytes(data_dir), sizes["log_events"], sizes["tombstones"]
        )
        on_round(sample)
    return state


def measure_compaction(workdir: Path, progress: Callable[[str], None]) -> list[Figure]:
    return measure(PLAN.get(), workdir, progress)


def measure(plan: CompactionPlan, workdir: Path, progress: Callable[[str], None]) -> list[Figure]:
    rounds = plan.rewrites // RECORDS
    if rounds == 0:
        return []
    data_dir = workdir / "compaction"
    initialise(data_dir, NodeConfig(name="churn"), "bench")
    every = max(1, rounds // plan.points)
    samples: list[Sample] = []
    started = time.perf_counter()

    def on_round(sample: Sample) -> None:
        done = sample.rewrites // RECORDS
        if done % every == 0 or done == rounds:
            samples.append(sample)
            seconds = time.perf_counter() - started
            progress(
                f"compaction: {sample.rewrites:,} rewrites in {seconds:.0f} s: "
                f"{sample.disk_bytes:,} bytes on disk, {sample.log_events} log events, "
                f"{sample.tombstones} tombstones"
            )

    progress(f"compaction: rewriting {RECORDS:,} records {rounds:,} times")
    trio.run(churn, data_dir, rounds, on_round).close()
    figures = []
    for sample in samples:
        key = f"compaction.r{sample.rewrites}"
        at = f"after {sample.rewrites:,} rewrites"
        figures += [
            Figure(f"{key}.bytes", f"compaction, disk use {at}", sample.disk_bytes, "bytes"),
            Figure(f"{key}.log_events", f"compaction, log events {at}", sample.log_events, ""),
            Figure(f"{key}.tombstones", f"compaction, tombstones {at}", sample.tombstones, ""),
        ]
    return figures
