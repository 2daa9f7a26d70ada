"""The state of one running node, and its write path.

Writes are serialised by one lock: build the events, check them with the same code that
checks a peer's events, commit them to SQLite in a worker thread (``synchronous=FULL``),
then update memory. The API answers only after that, so an acknowledged write is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from node import heap
from node.config import NodeConfig, load_config
from node.identity import IdentityFiles, load_signing_key
from node.registers import Register
from node.replica import Prepared, Replica
from node.replication.delivery import units
from node.store.database import Database
from node.writer import Writer
from node.zones.edits import ZoneEditor
from node.zones.materialise import Generations
from protocol.canonical import JSONValue
from protocol.clock import hlc_observe
from protocol.events import EventError, SignedEvent

log = logging.getLogger("peer53.state")

DB_FILE = "peer53.db"
# Events from peers with at most this many writes in all are checked and committed on the
# trio thread: a worker thread's hand-off costs more than such a commit, and it holds up
# DNS answers for a millisecond or two at most.
INLINE_WRITES = 64
CHECKPOINT_EVERY = 1.0
"""Seconds between checkpoints of the WAL, when something was committed meanwhile."""


class DataDirError(RuntimeError):
    pass


class WritesHeld(RuntimeError):
    """Local writes stayed held past the wait a write gets (see ``hold_writes``)."""


@dataclass
class NodeIdentity:
    node_id: str
    cluster_id: str


class NodeState:
    def __init__(self, data_dir: Path, config: NodeConfig, db: Database) -> None:
        self.data_dir = data_dir
        self.config = config
        self.db = db
        node_id, cluster_id = db.meta("node_id"), db.meta("cluster_id")
        if node_id is None or cluster_id is None:
            raise DataDirError(f"{data_dir / DB_FILE} has no node identity; was init interrupted?")
        self.identity = NodeIdentity(node_id, cluster_id)
        self.replica = Replica(db, cluster_id, node_id)
        key = load_signing_key(IdentityFiles(data_dir).node_key)
        self.writer = Writer(self.replica, key, db.last_hlc())
        if self.writer.node_id != node_id:
            raise DataDirError("node.key does not belong to this node's database")
        self.editor = ZoneEditor(self.replica.registers, self.replica.materialiser, node_id)
        self.lock = trio.Lock()  # held by every change, and while a snapshot is taken
        self._sync_lock = trio.Lock()  # one WAL sync at a time (``durable``)
        # What invites tell joiners to dial; the runtime sets it once the listener is bound.
        self.peer_address = config.listen.advertise or config.listen.peer
        self._writes_open = trio.Event()
        self._writes_open.set()
        # Called with the events just applied, local or remote, in apply order.
        self.on_applied: list[Callable[[Sequence[SignedEvent]], None]] = []

    @classmethod
    def open(cls, data_dir: Path, config: NodeConfig | None = None) -> NodeState:
        db_path = data_dir / DB_FILE
        if not db_path.exists():
            raise DataDirError(
                f"{data_dir} is not initialised: run 'peer53 init --data-dir {data_dir}'"
            )
        state = cls(data_dir, config or load_config(data_dir), Database(db_path))
        state.replica.load()
        return state

    def write_now(self, kind: str, writes: dict[str, JSONValue]) -> list[SignedEvent]:
        """The write path without trio, for init and offline tools."""
        events = self.writer.build(kind, writes)
        self.replica.apply(events)
        return events

    def _prepare_and_commit(
        self, kind: str, make_writes: Callable[[], dict[str, JSONValue]]
    ) -> tuple[list[SignedEvent], Prepared, Generations]:
        events = self.writer.build(kind, make_writes())
        # Signed here just now by sign_event, whose output is checked by construction.
        prepared = self.replica.prepare(events, verified=True)
        return events, prepared, self.replica.commit(prepared)

    def hold_writes(self) -> None:
        """Make local writes wait, e.g. until this node has its own past events back."""
        if self._writes_open.is_set():
            self._writes_open = trio.Event()

    def release_writes(self) -> None:
        self._writes_open.set()

    @property
    def writes_held(self) -> bool:
        return not self._writes_open.is_set()

    def _applied(self, events: Sequence[SignedEvent]) -> None:
        for listener in self.on_applied:
            listener(events)

    async def write(
        self, kind: str, make_writes: Callable[[], dict[str, JSONValue]], *, inline: bool = False
    ) -> list[SignedEvent]:
        """Validate and build the writes, sign, check and commit them, then apply.

        ``make_writes`` runs under the write lock, so what it validates against cannot change
        before its event is applied; it runs with everything but the final in-memory update
        in a worker thread, so a large import never stalls DNS answers. A caller that knows
        its change is small asks for ``inline``: on the trio thread, as for small changes
        from peers (``_commit_locked``), since the hand-off costs more than such a write.
        """
        while True:
            if self.writes_held:
                with trio.move_on_after(2 * self.config.peering.write_hold_ms / 1000):
                    await self._writes_open.wait()
                if self.writes_held:
                    raise WritesHeld(
                        "writes are held: changes this node made earlier are not applied "
                        "here yet (a peer holds them after a restore from an older copy, or "
                        "they wait in the log after a snapshot); they must be applied first"
                    )
            await self._lock()
            try:
                if self.writes_held:  # held while this write waited for the lock
                    continue
                if inline:
                    events, prepared, generations = self._prepare_and_commit(kind, make_writes)
                else:
                    events, prepared, generations = await trio.to_thread.run_sync(
                        self._prepare_and_commit, kind, make_writes
                    )
                self._finish(prepared, generations)
            finally:
                self.lock.release()
            self._applied(events)
            await trio.lowlevel.checkpoint()  # an inline write yields only here, once applied
            return events

    async def _lock(self) -> None:
        """Take the write lock, without a pass of the scheduler while it is free: a
        change from the API or a peer yields once, after it is applied."""
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()

    async def _commit_locked(self, writes: int, prepare: Callable[[], Prepared]) -> Prepared:
        """Prepare and commit, then apply; the caller holds the write lock. What commits
        here came from peers (events, repairs, snapshots) or is derived from it, so it is
        committed without an fsync; ``durable`` syncs it before this node reports it. Small
        changes commit on the trio thread: a worker thread's hand-off costs more."""

        def run() -> tuple[Prepared, Generations]:
            prepared = prepare()
            return prepared, self.replica.commit(prepared, durable=False)

        if writes <= INLINE_WRITES:
            prepared, generations = run()
        else:
            prepared, generations = await trio.to_thread.run_sync(run)
        self._finish(prepared, generations)
        return prepared

    async def durable(self) -> None:
        """Wait until everything committed so far is on disk. A node calls this before it
        tells a peer its vector (HELLO, PING, PONG): peers count on what it reports (for
        ``?wait``, relaying and compaction), so that must survive a power loss. One sync
        covers every commit before it, and links waiting meanwhile share it. It does not
        wait for the write lock, which a large import holds for long: heartbeats go on."""
        db = self.replica.db
        if db.synced >= db.commits:
            return
        async with self._sync_lock:
            target = db.commits  # read again: a sync covers what was committed before it
            if db.synced < target:
                await trio.to_thread.run_sync(db.sync)  # StorageFailed: report nothing
                db.synced = max(db.synced, target)

    async def checkpoints(self) -> None:
        """Keep the WAL short by checkpointing it from a worker thread, so that no commit on
        the trio thread does it (see ``node.store.database``)."""
        done = self.db.commits
        while True:
            await trio.sleep(CHECKPOINT_EVERY)
            if self.db.commits != done:
                done = self.db.commits
                await trio.to_thread.run_sync(self.db.checkpoint)

    def _finish(self, prepared: Prepared, generations: Generations) -> None:
        """Every commit's last step, on the trio thread."""
        self.replica.finish(prepared, generations)
        heap.settle(len(prepared.plan.changes) + len(prepared.dead))

    async def apply_remote(self, events: Sequence[SignedEvent]) -> None:
        """Apply events from peers, all or none; EventError names the first refused one.
        Their signatures must have been checked (``Peering`` does, event by event).

        The local clock moves past their stamps, so a write made here after seeing them
        orders after them even when this node's wall clock runs behind.
        """
        await self._lock()
        try:
            await self._commit_locked(
                sum(len(e.body.writes) for e in events),
                partial(self.replica.prepare, events, verified=True),
            )
            newest = max(e.body.hlc for e in events)
            self.writer.last_hlc = hlc_observe(self.writer.last_hlc, newest, self.writer.clock())
        finally:
            self.lock.release()
        self._applied(events)
        await trio.lowlevel.checkpoint()  # an inline commit yields only here, once applied

    async def repair(
        self, found: Mapping[str, tuple[Register, SignedEvent]], damaged: set[str]
    ) -> int:
        """Apply what anti-entropy found (see ``Replica.prepare_repair``); how many keys
        changed here."""
        async with self.lock:
            prepared = await self._commit_locked(
                len(found) + len(damaged), partial(self.replica.prepare_repair, found, damaged)
            )
        return len(prepared.plan.changes) + len(prepared.dead)

    async def install(
        self, vv: Mapping[str, int], entries: Mapping[str, SignedEvent]
    ) -> tuple[int, list[SignedEvent]]:
        """Replace the state with a snapshot's (``Replica.prepare_install``), then apply
        again the logged events it does not cover: this node's own writes that never
        reached the sender, and any others. SnapshotError changes nothing. How many events
        applied again, and the logged events that do not apply yet (a departed member's
        awaiting cut reports, and what follows them), which stay logged for the caller to
        deliver; while any is this node's own, local writes are held, since a new write
        would take its sequence number."""
        async with self.lock:
            await self._commit_locked(
                len(entries), partial(self.replica.prepare_install, vv, entries)
            )
            newest = max((e.body.hlc for e in entries.values()), default=0)
            self.writer.last_hlc = hlc_observe(self.writer.last_hlc, newest, self.writer.clock())
            replayed: list[SignedEvent] = []
            for unit in units(await trio.to_thread.run_sync(self.replica.replayable)):
                try:
                    await self._commit_locked(
                        sum(len(e.body.writes) for e in unit),
                        partial(self.replica.prepare, unit, verified=True),
                    )
                except EventError as exc:
                    log.warning("logged events wait to be applied again: %s", exc)
                    break
                replayed.extend(unit)
            pending = await trio.to_thread.run_sync(self.replica.pending)
            if any(e.body.origin == self.identity.node_id for e in pending):
                self.hold_writes()
        self._applied(replayed)
        return len(replayed), pending

    async def forget(self, events: Sequence[SignedEvent]) -> None:
        """Drop logged copies of pending events refused for good, under the write lock:
        a commit may be running in a worker thread on the same connection."""
        async with self.lock:
            self.replica.forget(events)

    async def purge(self, stable: Mapping[str, int]) -> int:
        """Drop causally stable tombstones; how many."""
        async with self.lock:
            prepared = await self._commit_locked(
                len(self.replica.registers.tombstones),
                partial(self.replica.prepare_purge, stable),
            )
        return len(prepared.purged)

    def close(self) -> None:
        self.db.close()
