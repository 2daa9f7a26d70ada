"""Snapshots: the replicated state as the signed events behind it.

A node whose log no longer reaches back to a peer's vector (it was compacted) cannot send
that peer the events it lacks, and a joining node needs everything. Both get a snapshot:
for every state register, the signed event that wrote it, with the keys each event still
holds, and the version vector the state is at. Nothing in it is unsigned: the receiver
rebuilds every register from the event's own write, so a snapshot can be checked like any
event. Registers that are gone (purged tombstones) are simply absent.

A snapshot is streamed as SNAPSHOT messages of bounded size; an event holding more keys
than one message may carry is repeated with the rest of its keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from protocol.events import EventError, SignedEvent, verify_signature
from protocol.peer import MAX_KEYS_PER_MESSAGE, Snapshot

# Event wires per SNAPSHOT message: with base64 and up to MAX_KEYS_PER_MESSAGE keys of at
# most MAX_KEY_LENGTH each, a message stays well inside MAX_FRAME.
MAX_SNAPSHOT_EVENT_BYTES = 6 * 1024 * 1024


class SnapshotError(ValueError):
    """A snapshot that cannot be installed; nothing of it is."""


def snapshot_messages(
    vv: Mapping[str, int], holdings: Iterable[tuple[SignedEvent, list[str]]]
) -> Iterator[Snapshot]:
    """Chunk (event, keys it holds) pairs into SNAPSHOT messages; the last one (possibly
    empty) has ``last`` set."""
    vector = dict(vv)
    events: list[SignedEvent] = []
    keys: list[list[str]] = []
    count = size = 0
    for event, held in holdings:
        wire = len(event.to_wire())
        start = 0
        while start < len(held):
            room = MAX_KEYS_PER_MESSAGE - count
            if events and (room == 0 or size + wire > MAX_SNAPSHOT_EVENT_BYTES):
                yield Snapshot(vector, events, keys, False)
                events, keys, count, size = [], [], 0, 0
                room = MAX_KEYS_PER_MESSAGE
            part = held[start : start + room]
            events.append(event)
            keys.append(part)
            count += len(part)
            size += wire
            start += len(part)
    yield Snapshot(vector, events, keys, True)


@dataclass
class SnapshotReader:
    """Collects and checks a snapshot's messages; ``entries`` maps each key to the event
    behind it once ``add`` returned True."""

    cluster_id: str
    vv: dict[str, int] | None = None
    entries: dict[str, SignedEvent] = field(default_factory=dict)
    _checked: set[str] = field(default_factory=set)

    def add(self, message: Snapshot) -> bool:
        """Check one message; True once the last has arrived. SnapshotError otherwise."""
        if self.vv is None:
            self.vv = dict(message.vv)
        elif message.vv != self.vv:
            raise SnapshotError("the snapshot's version vector changed between its messages")
        for event, held in zip(message.events, message.keys, strict=True):
            body = event.body
            if body.cluster != self.cluster_id:
                raise SnapshotError("the snapshot holds an event of another cluster")
            if not 1 <= body.seq <= self.vv.get(body.origin, 0):
                raise SnapshotError(
                    f"the snapshot holds event {body.seq} of {body.origin[:12]}, "
                    "beyond its own version vector"
                )
            if not held:
                raise SnapshotError("the snapshot lists an event that holds no key")
            if event.id not in self._checked:
                try:
                    verify_signature(event)
                except EventError as exc:
                    raise SnapshotError(f"the snapshot holds a forged event: {exc}") from None
                self._checked.add(event.id)
            for key in held:
                if key not in body.writes:
                    raise SnapshotError(f"the snapshot says an event wrote {key!r}; it did not")
                if key in self.entries:
                    raise SnapshotError(f"the snapshot lists {key!r} twice")
                self.entries[key] = event
        return message.last
