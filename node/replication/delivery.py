"""Causal delivery: holding received events until they can be applied.

Events from peers arrive in any order: through different links, after reconnects, in
repair rounds. The replica accepts an event only when every event in its causal past is
applied and it is the next sequence number of its origin; a group only whole. This buffer
keeps what is not deliverable yet and releases, for a given version vector, the longest
run of events the replica will accept, in an order it accepts.

Two different events with the same (origin, seq) mean an origin reused a sequence number
(DESIGN: "an alarm"): the second is not kept, and the pair is reported in ``conflicts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from protocol.events import SignedEvent

DEFAULT_MAX_PENDING = 200_000
APPLY_CHUNK = 500  # events per commit when catching up: bounded memory and commit time


class BufferFull(RuntimeError):
    """More undeliverable events than the bound: the peer must catch up by pull instead."""


@dataclass
class CausalBuffer:
    max_pending: int = DEFAULT_MAX_PENDING
    _pending: dict[tuple[str, int], SignedEvent] = field(default_factory=dict)
    conflicts: list[tuple[SignedEvent, SignedEvent]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, events: Iterable[SignedEvent], applied: Mapping[str, int]) -> None:
        for event in events:
            body = event.body
            if body.seq <= applied.get(body.origin, 0):
                continue  # already applied; duplicates are normal after reconnects
            slot = (body.origin, body.seq)
            held = self._pending.get(slot)
            if held is not None:
                if held.id != event.id:
                    self.conflicts.append((held, event))
                continue
            if len(self._pending) >= self.max_pending:
                raise BufferFull(f"{len(self._pending)} events wait for their causal past")
            self._pending[slot] = event

    def prune(self, applied: Mapping[str, int]) -> None:
        """Drop what ``applied`` covers, e.g. after a snapshot jumped past it."""
        for slot in [s for s in self._pending if s[1] <= applied.get(s[0], 0)]:
            del self._pending[slot]

    def ready(self, applied: Mapping[str, int]) -> list[SignedEvent]:
        """Remove and return every event deliverable from ``applied``, in delivery order."""
        vv = dict(applied)
        out: list[SignedEvent] = []
        progress = True
        while progress:  # again while one origin's events unblock another's
            progress = False
            for origin in sorted({o for o, _ in self._pending}):
                while run := self._deliverable_from(origin, vv):
                    for event in run:
                        del self._pending[(origin, event.body.seq)]
                        vv[origin] = event.body.seq
                    out.extend(run)
                    progress = True
        return out

    def gaps(self, applied: Mapping[str, int]) -> dict[str, int]:
        """Origins with events held while their next one never arrived: the sequence
        number after which to ask for them again."""
        held = {origin for origin, _ in self._pending}
        return {
            origin: applied.get(origin, 0)
            for origin in held
            if (origin, applied.get(origin, 0) + 1) not in self._pending
        }

    def _deliverable_from(self, origin: str, vv: Mapping[str, int]) -> list[SignedEvent]:
        event = self._pending.get((origin, vv.get(origin, 0) + 1))
        if event is None or not _past_applied(event, vv):
            return []
        group = event.body.group
        if group is None:
            return [event]
        if group.index != 1:
            return []  # a group can only start at its first event
        run = [event]
        local = {**vv, origin: event.body.seq}
        for _ in range(group.size - 1):
            follower = self._pending.get((origin, local[origin] + 1))
            if (
                follower is None
                or follower.body.group is None
                or follower.body.group.id != group.id
                or not _past_applied(follower, local)
            ):
                return []
            run.append(follower)
            local[origin] = follower.body.seq
        return run


def _past_applied(event: SignedEvent, vv: Mapping[str, int]) -> bool:
    return all(vv.get(o, 0) >= seq for o, seq in event.body.vv.items())


def units(events: list[SignedEvent]) -> Iterator[list[SignedEvent]]:
    """Single events and whole groups, in order: what applies all-or-nothing."""
    index = 0
    while index < len(events):
        group = events[index].body.group
        size = 1 if group is None else group.size
        yield events[index : index + size]
        index += size


def whole_chunks(events: list[SignedEvent], target: int) -> Iterator[list[SignedEvent]]:
    """Slices of about ``target`` events for one commit each, never splitting a group."""
    chunk: list[SignedEvent] = []
    for unit in units(events):
        chunk.extend(unit)
        if len(chunk) >= target:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
