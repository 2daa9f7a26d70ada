"""Taking snapshots to send, and collecting and checking received ones (see
``protocol.snapshot``; ``NodeState.install`` installs them).

A snapshot is taken under the write lock, so its registers and vector are one moment's,
and the signed events behind them are read into memory then. Compaction still waits while
one streams (``streaming``), so that a slow peer's snapshot is never older than this
node's compaction point by the time it is installed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from node.service import NodeState
from protocol.events import SignedEvent
from protocol.peer import Snapshot
from protocol.snapshot import SnapshotError, SnapshotReader, snapshot_messages

log = logging.getLogger("peer53.snapshots")


@dataclass
class SnapshotStats:
    sent: int = 0
    installed: int = 0
    refused: int = 0
    last_installed_ms: int | None = None


class Snapshots:
    def __init__(self, state: NodeState) -> None:
        self.state = state
        self.streaming = 0
        self.stats = SnapshotStats()
        self._readers: dict[object, SnapshotReader] = {}
        self._refused: set[object] = set()  # sources whose current snapshot was refused

    @asynccontextmanager
    async def take(self) -> AsyncIterator[tuple[dict[str, int], Iterator[Snapshot]]]:
        """This node's state as SNAPSHOT messages, and the vector it is at. Damaged
        registers (not what their event wrote) are left out: the receiver lacks them
        until anti-entropy brings them, rather than taking a wrong value."""
        replica = self.state.replica
        async with self.state.lock:
            vv = dict(replica.vv)
            keys = [key for key, _ in replica.registers.items()]
            found, damaged = await trio.to_thread.run_sync(replica.sources, keys)
            self.streaming += 1
        if damaged:
            log.warning("%d damaged registers are left out of a snapshot", len(damaged))
        held: dict[str, tuple[SignedEvent, list[str]]] = {}
        for key, event in found.items():
            held.setdefault(event.id, (event, []))[1].append(key)
        try:
            yield vv, snapshot_messages(vv, held.values())
        finally:
            self.streaming -= 1
        self.stats.sent += 1

    async def receive(self, source: object, message: Snapshot) -> SnapshotReader | None:
        """Collect one message from ``source`` (a link); the whole checked snapshot once
        its last message is in. A bad snapshot is dropped with a warning."""
        if source in self._refused:  # the rest of a refused snapshot: never a whole one
            if message.last:
                self._refused.discard(source)
            return None
        reader = self._readers.setdefault(source, SnapshotReader(self.state.identity.cluster_id))
        try:
            done = await trio.to_thread.run_sync(reader.add, message)
        except SnapshotError as exc:
            self.refuse(source, exc, midway=not message.last)
            return None
        if not done:
            return None
        del self._readers[source]
        return reader

    def installed(self) -> None:
        self.stats.installed += 1
        self.stats.last_installed_ms = time.time_ns() // 1_000_000

    def refuse(self, source: object, exc: Exception, midway: bool = True) -> None:
        self._readers.pop(source, None)
        if midway:
            self._refused.add(source)
        self.stats.refused += 1
        log.warning("refused a snapshot: %s", exc)

    def forget(self, source: object) -> None:
        """A link closed: drop its partial snapshot."""
        self._readers.pop(source, None)
        self._refused.discard(source)
