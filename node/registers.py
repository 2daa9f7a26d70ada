"""Last-writer-wins registers: the replicated state as a function of applied events.

Each state key holds the value written by the event that wins for it. Events are ordered
by ``(hlc, origin)``, a total order that every node computes the same way, so the state
depends only on which events were applied, not on when they arrived. Security objects are
the exception: a revoked token or a removed member is terminal and wins over any
concurrent write.

Planning and committing are separate steps so that the caller can make the change durable
in SQLite first and touch memory only after the commit succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.canonical import JSONValue, canonical_text
from protocol.events import SignedEvent
from protocol.merkle import MerkleTree, entry_digest


@dataclass(frozen=True, slots=True)
class Register:
    value: JSONValue  # None is a tombstone
    hlc: int
    origin: str
    seq: int
    event_id: str
    text: str | None  # the value as stored: its canonical JSON, None for a tombstone

    @classmethod
    def written(cls, value: JSONValue, event: SignedEvent) -> Register:
        """The register that ``event``'s write of ``value`` makes."""
        body = event.body
        text = None if value is None else canonical_text(value)
        return cls(value, body.hlc, body.origin, body.seq, event.id, text)

    def digest(self) -> bytes:
        return entry_digest(self.event_id, self.hlc, self.origin, self.seq, self.text)


_INVITE_RANKS = {"open": 0, "revoked": 1, "used": 2}


def rank(key: str, value: JSONValue) -> int:
    """How final a value is; a higher rank always wins (DESIGN: security objects are
    terminal). A revoked token, a member that left or was removed, and a used or revoked
    invite never come back; an invite that was used stays "used" even if it is revoked
    concurrently, so the record of who joined is kept. A zone register ranks by its
    generation: generations only grow, so a deleted zone's records stay dead whatever
    order the events arrive in."""
    if not isinstance(value, dict):
        return 0
    if key.startswith("zone "):
        gen = value.get("gen")
        return gen if isinstance(gen, int) else 0
    if key.startswith("token "):
        return 1 if value.get("revoked") is True else 0
    if key.startswith("member "):
        return 1 if value.get("status") in ("left", "removed") else 0
    if key.startswith("invite "):
        return _INVITE_RANKS.get(str(value.get("status")), 0)
    return 0


def wins(key: str, new: Register, old: Register | None) -> bool:
    if old is None:
        return True
    new_rank, old_rank = rank(key, new.value), rank(key, old.value)
    if new_rank != old_rank:
        return new_rank > old_rank
    return (new.hlc, new.origin) > (old.hlc, old.origin)


@dataclass(frozen=True)
class Plan:
    """What applying a batch of events would change."""

    changes: dict[str, Register]
    conflicts: int  # writes to a key whose current value came from a concurrent event


OBJECT_KINDS = ("member", "token", "invite", "cut")


def _object_kind(key: str) -> str | None:
    kind = key.partition(" ")[0]
    return kind if kind in OBJECT_KINDS else None


class Registers:
    def __init__(self) -> None:
        self._regs: dict[str, Register] = {}
        # Keys of the few cluster objects, so listing them never scans every record.
        self._object_keys: dict[str, set[str]] = {kind: set() for kind in OBJECT_KINDS}
        self.tombstones: set[str] = set()  # so purging them never scans every record
        self.conflicts = 0
        self.merkle = MerkleTree()

    def __len__(self) -> int:
        return len(self._regs)

    def get(self, key: str) -> Register | None:
        return self._regs.get(key)

    def value(self, key: str) -> JSONValue:
        reg = self._regs.get(key)
        return None if reg is None else reg.value

    def items(self) -> Iterator[tuple[str, Register]]:
        return iter(self._regs.items())

    def objects(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, value) of every live object register of a kind: member, token, invite, or
        cut (whose id is "NODE REPORTER")."""
        prefix = kind + " "
        for key in sorted(self._object_keys[kind]):
            value = self._regs[key].value
            if isinstance(value, dict):
                yield key[len(prefix) :], value

    def _index(self, key: str, reg: Register) -> None:
        kind = _object_kind(key)
        if kind is not None:
            self._object_keys[kind].add(key)
        if reg.value is None:
            self.tombstones.add(key)
        else:
            self.tombstones.discard(key)

    def load(self, rows: Iterable[tuple[str, Register]]) -> None:
        for key, reg in rows:
            self._regs[key] = reg
            self._index(key, reg)
            self.merkle.set(key, reg.digest())

    def stable_tombstones(self, stable: Mapping[str, int]) -> set[str]:
        """Tombstones written by events at or below ``stable`` (see
        ``protocol.compaction``)."""
        return {
            key
            for key in self.tombstones
            if self._regs[key].seq <= stable.get(self._regs[key].origin, 0)
        }

    def plan(self, events: Sequence[SignedEvent]) -> Plan:
        changes: dict[str, Register] = {}
        conflicts = 0
        for event in events:
            body = event.body
            for key, value in body.writes.items():
                new = Register.written(value, event)
                old = changes.get(key) or self._regs.get(key)
                if old is not None and _concurrent(old, body.origin, body.vv):
                    conflicts += 1
                if wins(key, new, old):
                    changes[key] = new
        return Plan(changes, conflicts)

    def commit(self, plan: Plan) -> None:
        self._regs.update(plan.changes)
        for key, reg in plan.changes.items():
            self._index(key, reg)
            self.merkle.set(key, reg.digest())
        self.conflicts += plan.conflicts

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._regs.pop(key, None)
            kind = _object_kind(key)
            if kind is not None:
                self._object_keys[kind].discard(key)
            self.tombstones.discard(key)
            self.merkle.set(key, None)


def _concurrent(old: Register, origin: str, vv: Mapping[str, int]) -> bool:
    return old.origin != origin and vv.get(old.origin, 0) < old.seq
