"""Keeping the log and the tombstones bounded (the rules are in ``protocol.compaction``).

Every ``compact_interval_ms`` a pass takes the acknowledged vectors of the members that
count, purges the causally stable tombstones, then deletes the log events below the floor
that no register refers to. A member unheard of for ``stale_after_ms`` (counted from when
this node first saw it active, if it never heard from it) is *stale*: it no longer counts,
so it cannot pin the log, and it gets a snapshot when it returns. A member never heard of
that is not stale yet stops the pass: its position is unknown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import trio

from node.replication.link import PeerView
from node.replication.snapshots import Snapshots
from node.service import NodeState
from protocol.compaction import Stability, floor

log = logging.getLogger("peer53.compaction")


@dataclass
class CompactionStats:
    runs: int = 0
    last_run_ms: int | None = None
    events_deleted: int = 0
    tombstones_purged: int = 0
    floor: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


class Compactor:
    def __init__(
        self,
        state: NodeState,
        views: Mapping[str, PeerView],
        snapshots: Snapshots,
        others: Callable[[], list[str]],
    ) -> None:
        self.state = state
        self.views = views
        self.snapshots = snapshots
        self.others = others
        self.stability = Stability(state.db.stable())
        self.stats = CompactionStats()
        self.stale: set[str] = set()
        self._since: dict[str, int] = {}  # member -> when this node first saw it active

    async def run(self) -> None:
        interval = self.state.config.peering.compact_interval_ms / 1000
        while True:
            await trio.sleep(interval)
            await self.compact()

    def acks(self, now_ms: int) -> dict[str, dict[str, int]] | None:
        """The vectors of the members that count, this node's included; None while one
        that counts has not been heard from since start (its position is unknown).

        Members go stale only while this node hears from a majority of the active members
        right now (within ``dead_after_ms``), itself included: a node cut off in a
        minority would otherwise count only itself and delete its own events that nobody
        else has. A member's silence counts from when this node first saw it active."""
        timers = self.state.config.peering
        others = self.others()
        known: dict[str, dict[str, int]] = {}
        overdue = set()
        live = 1
        for member in others:
            since = self._since.setdefault(member, now_ms)
            view = self.views.get(member)
            seen = None if view is None else view.last_seen_ms
            silent = now_ms - (since if seen is None else max(seen, since))
            if silent > timers.stale_after_ms:
                overdue.add(member)
            if silent <= timers.dead_after_ms:
                live += 1
            if view is not None and seen is not None:
                known[member] = dict(view.acked)
        stale = overdue if 2 * live > 1 + len(others) else set()
        for member in stale - self.stale:
            log.warning(
                "member %s unheard of for over %d ms: it no longer holds back compaction, and "
                "resyncs from a snapshot when it returns",
                member[:12],
                timers.stale_after_ms,
            )
        self.stale = stale
        counted = [m for m in others if m not in stale]
        if any(m not in known for m in counted):
            return None
        return {self.state.identity.node_id: dict(self.state.replica.vv)} | {
            m: known[m] for m in counted
        }

    def _departures_settled(self, counted: set[str], low: dict[str, int]) -> bool:
        """Whether every member that left or was removed has its cut settled (every member
        that counts reported it) and the floor holds its events up to the cut. Until then
        one of its events may still arrive and be concurrent with a tombstone, while the
        stability rule no longer waits for it (it does not count): nothing is purged."""
        replica = self.state.replica
        for node_id, value in replica.registers.objects("member"):
            if value.get("status") not in ("left", "removed"):
                continue
            reports = replica.cut_reports(node_id)
            if not counted <= reports.keys() or low.get(node_id, 0) < max(reports.values()):
                return False
        return True

    async def compact(self) -> None:
        acks = self.acks(_now_ms())
        if acks is None or self.snapshots.streaming:
            return
        low = floor(acks.values())
        purged = 0
        stable = self.stability.stable
        if self._departures_settled(set(acks), low):
            stable = self.stability.observe(acks)
            purged = await self.state.purge(stable) if stable else 0
        replica = self.state.replica
        async with self.state.lock:
            if self.snapshots.streaming:
                return
            deleted = await trio.to_thread.run_sync(replica.db.truncate, low, stable)
            sizes = await trio.to_thread.run_sync(replica.db.sizes)
        for origin, seq in low.items():
            replica.compacted[origin] = max(replica.compacted.get(origin, 0), seq)
        stats = self.stats
        stats.runs += 1
        stats.last_run_ms = _now_ms()
        stats.events_deleted += deleted
        stats.tombstones_purged += purged
        stats.floor = low
        stats.sizes = sizes
        if deleted or purged:
            log.info("compaction: %d log events deleted, %d tombstones purged", deleted, purged)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
