"""Verifying and applying events: the one path by which state changes on any node.

A local write and an event received from a peer go through the same three steps:
``prepare`` checks every event and computes the register changes without touching
anything; the caller commits the result to SQLite (off the trio thread, under the write
lock); ``finish`` then updates the in-memory registers, version vector and zone index. If
the commit fails nothing in memory has moved, so a failed write leaves no trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from node.registers import Plan, Register, Registers, wins
from node.replication.delivery import CausalBuffer, units
from node.store.database import Database, Install
from node.zones.index import ZoneTable
from node.zones.materialise import Generations, Materialiser
from protocol.compaction import covers
from protocol.events import EventError, SignedEvent, verify_signature
from protocol.membership import Verdict, departed_event
from protocol.snapshot import SnapshotError
from protocol.statekeys import StateKeyError, check_write, member_key

log = logging.getLogger("peer53.replica")


class EventWaits(EventError):
    """An event of a departed member above the cut so far, while reports are missing: not
    refused for good, but not applied until a report raises the cut or all are in."""


@dataclass(frozen=True)
class Prepared:
    events: Sequence[SignedEvent]
    plan: Plan
    dead: set[str]
    install: Install | None = None  # a snapshot: its vector replaces this node's
    purged: frozenset[str] = frozenset()  # stable tombstones dropped
    logged: Sequence[SignedEvent] = ()  # applied before; stored again, not applied


class Replica:
    def __init__(self, db: Database, cluster_id: str, node_id: str) -> None:
        self.db = db
        self.cluster_id = cluster_id
        self.me = node_id
        self.registers = Registers()
        self.zones = ZoneTable()
        self.materialiser = Materialiser(self.registers, self.zones)
        self.vv: dict[str, int] = {}
        self.compacted: dict[str, int] = {}  # the log was truncated up to here
        self.rejected = 0
        # Cut reports from authentic events not applied yet: member -> reporter -> seq.
        self.heard_cuts: dict[str, dict[str, int]] = {}

    def load(self) -> None:
        """Rebuild memory from SQLite at start-up, and apply the logged events a snapshot
        did not cover (an install stopped before they were applied again) as far as they
        go; what does not apply yet stays logged (``pending``) for peering to deliver."""
        self.registers.load(self.db.registers())
        self.vv.update(self.db.version_vector())
        self.compacted.update(self.db.compacted())
        self.materialiser.rebuild()
        for unit in units(self.replayable()):
            try:
                self.apply(unit)
            except EventError as exc:
                log.warning("logged events wait to be applied again: %s", exc)
                return

    def pending(self) -> list[SignedEvent]:
        """Logged events beyond the vector: this node's own writes and others' that a
        snapshot it installed did not cover. Never deleted unless refused for good."""
        return self.db.unapplied()

    def forget(self, events: Sequence[SignedEvent]) -> None:
        """Drop logged copies of pending events that were refused for good."""
        if gone := self.db.forget(events):
            log.warning("%d logged events were refused and dropped", gone)

    def replayable(self) -> list[SignedEvent]:
        """The pending events that apply now, in an order they apply in."""
        events = self.pending()
        buffer = CausalBuffer(max_pending=len(events) + 1)
        buffer.add(events, self.vv)
        return buffer.ready(self.vv)

    def active_members(self) -> list[str]:
        return [i for i, v in self.registers.objects("member") if v.get("status") == "active"]

    def is_member(self, node_id: str) -> bool:
        value = self.registers.value(member_key(node_id))
        return isinstance(value, dict) and value.get("status") == "active"

    def membership(self, node_id: str) -> str | None:
        """active, left or removed; None for a node that never was a member."""
        value = self.registers.value(member_key(node_id))
        return str(value.get("status")) if isinstance(value, dict) else None

    def cut_reports(self, node_id: str) -> dict[str, int]:
        """Reporter -> how many of ``node_id``'s events it had applied when it applied the
        end of that membership (see ``protocol.membership``): applied reports, and reports
        heard in authentic events still waiting to apply."""
        prefix = node_id + " "
        reports = dict(self.heard_cuts.get(node_id, {}))
        for ident, value in self.registers.objects("cut"):
            if ident.startswith(prefix):
                reports[ident[len(prefix) :]] = value["seq"]
        return reports

    def seen(self, origin: str) -> int:
        """How many of ``origin``'s events this node has: applied, or logged and pending
        without a gap (a snapshot did not cover them). A cut report counts these, so that
        a departed member's events that only this node has still apply after a snapshot,
        and this node's own events that followed them can apply too."""
        return self.db.logged_upto(origin, self.vv.get(origin, 0))

    def _check_origin(self, event: SignedEvent, joined: set[str]) -> None:
        body = event.body
        if body.origin in joined or self.is_member(body.origin):
            return
        if self.membership(body.origin) in ("left", "removed"):
            reporters = [m for m in self.active_members() if m != body.origin]
            reports = self.cut_reports(body.origin)
            if self.me in reporters:  # until it writes its report: the one it will write
                reports.setdefault(self.me, self.seen(body.origin))
            verdict = departed_event(body.seq, reports, reporters)
            if verdict is Verdict.APPLY:
                return
            if verdict is Verdict.WAIT:
                raise EventWaits(f"event {body.seq} of departed {body.origin[:12]} waits")
            raise EventError(f"event {body.seq} of {body.origin[:12]} is past its cut")
        genesis = (
            body.seq == 1
            and not self.vv
            and isinstance(body.writes.get(member_key(body.origin)), dict)
        )
        if not genesis:
            raise EventError(f"event from {body.origin[:12]}, which is not an active member")

    def prepare(self, events: Sequence[SignedEvent], verified: bool = False) -> Prepared:
        """Check events in order; raise EventError for the first one that must be refused.

        ``verified``: the caller checked every signature already (peer ingest does, to
        count forgeries), so they are not checked twice."""
        expected = dict(self.vv)
        joined: set[str] = set()  # members made active by earlier events of this batch
        _check_groups(events)
        for event in events:
            body = event.body
            if body.cluster != self.cluster_id:
                raise EventError("event for another cluster")
            if not verified:
                verify_signature(event)
            self._check_origin(event, joined)
            for key, value in body.writes.items():
                try:
                    check_write(key, value, body.origin)
                except StateKeyError as exc:
                    raise EventError(str(exc)) from None
            want = expected.get(body.origin, 0) + 1
            if body.seq != want:
                raise EventError(f"event seq {body.seq} from {body.origin[:12]}, expected {want}")
            if not body.follows_its_origin:
                raise EventError(f"event from {body.origin[:12]}: its vector is not at seq - 1")
            behind = [o for o, seq in body.vv.items() if expected.get(o, 0) < seq]
            if behind:  # causal delivery: its past must be applied first
                raise EventError(f"event from {body.origin[:12]} depends on events not yet applied")
            expected[body.origin] = body.seq
            joined.update(_members_added(body.writes))
        plan = self.registers.plan(events)
        dead = self.materialiser.dead_keys(plan.changes)
        live = {k: r for k, r in plan.changes.items() if k not in dead}
        return Prepared(events, Plan(live, plan.conflicts), dead)

    def sources(self, keys: Iterable[str]) -> tuple[dict[str, SignedEvent], set[str]]:
        """The signed event behind each key's register, and the keys whose register is
        damaged: not what its event wrote (or its event is gone). Absent keys are in
        neither."""
        events: dict[tuple[str, int], SignedEvent | None] = {}
        found: dict[str, SignedEvent] = {}
        damaged: set[str] = set()
        for key in keys:
            reg = self.registers.get(key)
            if reg is None:
                continue
            where = (reg.origin, reg.seq)
            if where not in events:
                events[where] = self.db.event(*where)
            event = events[where]
            if (
                event is not None
                and event.id == reg.event_id
                and key in event.body.writes
                and Register.written(event.body.writes[key], event) == reg
            ):
                found[key] = event
            else:
                damaged.add(key)
        return found, damaged

    def prepare_repair(
        self, found: Mapping[str, tuple[Register, SignedEvent]], damaged: set[str]
    ) -> Prepared:
        """Registers that anti-entropy brought, each with the signed event behind it (one
        applied here before), and damaged keys to drop. A found register replaces a local
        one that is missing, damaged, or that it beats; an intact local one that wins is
        kept. The events of the registers taken go back into the log if compaction
        deleted them: a register's event is always in the log."""
        _, broken = self.sources(found)
        changes = {}
        for key, (reg, _) in found.items():
            local = self.registers.get(key)
            if local == reg:
                continue
            if local is None or key in broken or wins(key, reg, local):
                changes[key] = reg
        dead = self.materialiser.dead_keys(changes)
        live = {k: r for k, r in changes.items() if k not in dead}
        _, still = self.sources(damaged - changes.keys())  # checked again under the lock
        drop = {k for k in still if self.registers.get(k) is not None}
        logged = list({found[k][1].id: found[k][1] for k in live}.values())
        return Prepared([], Plan(live, 0), dead | drop, logged=logged)

    def prepare_install(
        self, vv: Mapping[str, int], entries: Mapping[str, SignedEvent]
    ) -> Prepared:
        """A snapshot (``protocol.snapshot``) as a change: every register it holds, every
        other key dropped, and its vector in place of this node's. SnapshotError if it
        would lose events this node applied and can no longer replay: its log was
        truncated past the snapshot's vector."""
        if not covers(vv, self.compacted):
            raise SnapshotError("the snapshot is older than this node's compacted log")
        for key, event in entries.items():
            try:
                check_write(key, event.body.writes[key], event.body.origin)
            except StateKeyError as exc:
                raise SnapshotError(f"the snapshot holds a bad write: {exc}") from None
        registers = {key: Register.written(e.body.writes[key], e) for key, e in entries.items()}
        _check_snapshot_origins(registers)
        changes = {k: r for k, r in registers.items() if self.registers.get(k) != r}
        dropped = {k for k, _ in self.registers.items() if k not in registers}
        events = list({e.id: e for e in entries.values()}.values())
        return Prepared(events, Plan(changes, 0), dropped, Install(dict(vv)))

    def prepare_purge(self, stable: Mapping[str, int]) -> Prepared:
        """Drop the tombstones that are causally stable (see ``protocol.compaction``)."""
        return Prepared(
            [], Plan({}, 0), set(), None, frozenset(self.registers.stable_tombstones(stable))
        )

    def commit(self, prepared: Prepared, durable: bool = True) -> Generations:
        """The stored step, plus building any zone started anew; may run in a worker
        thread. ``durable=False`` for what peers hold too (``Database.commit``)."""
        self.db.commit(
            prepared.events,
            prepared.plan.changes,
            prepared.dead | prepared.purged,
            prepared.install,
            prepared.logged,
            durable,
        )
        return self.materialiser.build_generations(prepared.plan.changes)

    def finish(self, prepared: Prepared, generations: Generations) -> dict[str, Register]:
        self.registers.commit(prepared.plan)
        self.registers.drop(prepared.dead | prepared.purged)
        if prepared.install is None:
            for event in prepared.events:
                self.vv[event.body.origin] = event.body.seq
        else:  # in place: links hold this vector
            self.vv.clear()
            self.vv.update(prepared.install.vv)
            for origin, seq in prepared.install.vv.items():
                self.compacted[origin] = max(self.compacted.get(origin, 0), seq)
        self.materialiser.apply(prepared.plan.changes, generations, prepared.dead, prepared.purged)
        return prepared.plan.changes

    def apply(self, events: Sequence[SignedEvent]) -> dict[str, Register]:
        """All three steps at once, for callers outside trio (init, tests)."""
        prepared = self.prepare(events)
        return self.finish(prepared, self.commit(prepared))


def _check_snapshot_origins(registers: Mapping[str, Register]) -> None:
    """Every event in a snapshot is by a member, and none of a departed member's is past
    the cut its own registers settle (``protocol.membership``): what no member applies."""
    newest: dict[str, int] = {}
    for reg in registers.values():
        newest[reg.origin] = max(newest.get(reg.origin, 0), reg.seq)
    status = {
        key.removeprefix("member "): reg.value.get("status")
        for key, reg in registers.items()
        if key.startswith("member ") and isinstance(reg.value, dict)
    }
    active = [node_id for node_id, s in status.items() if s == "active"]
    for origin, seq in newest.items():
        if origin not in status:
            raise SnapshotError(f"the snapshot holds events of {origin[:12]}, not a member")
        if status[origin] == "active":
            continue
        prefix = f"cut {origin} "
        reports = {
            key.removeprefix(prefix): int(reg.value["seq"])
            for key, reg in registers.items()
            if key.startswith(prefix) and isinstance(reg.value, dict)
        }
        reporters = [m for m in active if m != origin]
        if departed_event(seq, reports, reporters) is Verdict.REFUSE:
            raise SnapshotError(
                f"the snapshot holds event {seq} of departed {origin[:12]}, past its cut"
            )


def _check_groups(events: Sequence[SignedEvent]) -> None:
    """A group applies all-or-nothing: it must be in the batch whole, in order, unbroken."""
    index = 0
    while index < len(events):
        group = events[index].body.group
        if group is None:
            index += 1
            continue
        members = events[index : index + group.size]
        positions = [
            (e.body.group.id, e.body.group.index) if e.body.group else None for e in members
        ]
        if positions != [(group.id, i) for i in range(1, group.size + 1)]:
            raise EventError(f"event group {group.id} is incomplete or out of order")
        if any(e.body.group is not None and e.body.group.size != group.size for e in members):
            raise EventError(f"event group {group.id} has inconsistent sizes")
        index += group.size


def _members_added(writes: Mapping[str, object]) -> Iterator[str]:
    for key, value in writes.items():
        if (
            key.startswith("member ")
            and isinstance(value, dict)
            and value.get("status") == "active"
        ):
            yield key[len("member ") :]
