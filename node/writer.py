"""Turning a local change into signed events.

One API request becomes one event, so its writes apply atomically everywhere. A change
with more writes than fit in one event (a large zone import) becomes a numbered group;
every node applies a group all-or-nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import nacl.signing

from node.replica import Replica
from protocol.canonical import JSONValue, canonical_json
from protocol.clock import hlc_tick
from protocol.events import EventBody, Group, SignedEvent, node_id_of, sign_event

MAX_WRITES_PER_EVENT = 2000
# Keeps one event, base64-encoded in an EVENTS message, far inside the peer frame limit.
MAX_WRITE_BYTES_PER_EVENT = 4 * 1024 * 1024


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Writer:
    def __init__(
        self,
        replica: Replica,
        key: nacl.signing.SigningKey,
        last_hlc: int,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.replica = replica
        self.key = key
        self.node_id = node_id_of(key.verify_key)
        self.last_hlc = last_hlc
        self.clock = clock

    def build(self, kind: str, writes: dict[str, JSONValue]) -> list[SignedEvent]:
        if not writes:
            raise ValueError("an event needs at least one write")
        chunks = _chunks(sorted(writes.items()))
        group_id = secrets.token_hex(16) if len(chunks) > 1 else None
        vv = dict(self.replica.vv)
        events = []
        for index, chunk in enumerate(chunks, start=1):
            self.last_hlc = hlc_tick(self.last_hlc, self.clock())
            seq = vv.get(self.node_id, 0) + 1
            body = EventBody(
                cluster=self.replica.cluster_id,
                origin=self.node_id,
                seq=seq,
                vv=dict(vv),
                hlc=self.last_hlc,
                kind=kind,
                writes=chunk,
                group=None if group_id is None else Group(group_id, index, len(chunks)),
            )
            events.append(sign_event(body, self.key))
            vv[self.node_id] = seq
        return events


def _chunks(items: list[tuple[str, JSONValue]]) -> list[dict[str, JSONValue]]:
    """Consecutive slices of at most MAX_WRITES_PER_EVENT writes and about
    MAX_WRITE_BYTES_PER_EVENT bytes (a single larger write still gets its own event)."""
    chunks: list[dict[str, JSONValue]] = [{}]
    size = 0
    for key, value in items:
        cost = len(key) + len(canonical_json(value))
        if chunks[-1] and (
            len(chunks[-1]) >= MAX_WRITES_PER_EVENT or size + cost > MAX_WRITE_BYTES_PER_EVENT
        ):
            chunks.append({})
            size = 0
        chunks[-1][key] = value
        size += cost
    return chunks
