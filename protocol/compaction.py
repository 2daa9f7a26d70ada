"""What a node may forget: log events every member has, and tombstones no write can beat.

Both rules are functions of the version vectors the active members acknowledged (their
*acks*), so they need no agreement beyond what replication already exchanges.

**Log truncation.** The *floor* is the lowest ack of every origin over the members that
count (active, and heard from within the stale limit; this node counts with its own
vector). Every member that counts has the events below the floor, so none of them will
ask for those again; an event there that no state register refers to may be deleted. A
member that fell behind the floor (it went stale, or was restored from an old copy)
catches up from a snapshot instead.

**Tombstone purge** (DESIGN "Ordering and convergence"). A tombstone may go once no event
concurrent with it can still arrive. An event concurrent with tombstone *t* was made by
some member *m* before *m* applied *t*, so its sequence number is at most *m*'s own entry
in the first ack of *m* that covers *t*. ``Stability`` records, when the floor first covers
a set of tombstones, each member's own entry in its latest ack (at least that), and
declares the set stable once the floor reaches all of them: by then every member that
counts has applied every event that could beat or tie those tombstones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Checkpoints waiting to become stable; more are merged into the newest, which is safe
# (a later checkpoint needs more) and only delays purging.
MAX_CHECKPOINTS = 8


def floor(acks: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The per-origin minimum of the vectors; an origin missing from one counts as 0."""
    vectors = list(acks)
    if not vectors:
        return {}
    origins = set().union(*vectors)
    low = {origin: min(vector.get(origin, 0) for vector in vectors) for origin in origins}
    return {origin: seq for origin, seq in low.items() if seq > 0}


def covers(vector: Mapping[str, int], other: Mapping[str, int]) -> bool:
    return all(vector.get(origin, 0) >= seq for origin, seq in other.items())


@dataclass(frozen=True)
class Checkpoint:
    cover: dict[str, int]  # tombstones written by events up to here ...
    need: dict[str, int]  # ... are stable once the floor reaches this


@dataclass
class Stability:
    """The vector below which tombstones are causally stable; it only grows."""

    stable: dict[str, int] = field(default_factory=dict)
    pending: list[Checkpoint] = field(default_factory=list)
    counted: set[str] = field(default_factory=set)

    def observe(self, acks: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
        """Take the acks of the members that count (member -> its vector, this node's
        own included) and return the stable vector.

        A member that starts counting (one that joined, or came back from stale) has no
        entry in the pending checkpoints, which could then pass while its concurrent
        events are still on their way: they are dropped and taken again."""
        if acks.keys() - self.counted:
            self.pending.clear()
        self.counted = set(acks)
        low = floor(acks.values())
        own = {member: vector.get(member, 0) for member, vector in acks.items()}
        for checkpoint in list(self.pending):
            # A member that stopped counting (stale or gone) is no longer waited for.
            need = {m: seq for m, seq in checkpoint.need.items() if m in acks}
            if covers(low, need):
                for origin, seq in checkpoint.cover.items():
                    self.stable[origin] = max(self.stable.get(origin, 0), seq)
                self.pending.remove(checkpoint)
        newest = self.pending[-1].cover if self.pending else self.stable
        if not covers(newest, low):
            checkpoint = Checkpoint(low, own)
            if len(self.pending) >= MAX_CHECKPOINTS:
                self.pending[-1] = checkpoint
            else:
                self.pending.append(checkpoint)
        return dict(self.stable)


def is_stable(stable: Mapping[str, int], origin: str, seq: int) -> bool:
    return seq <= stable.get(origin, 0)
