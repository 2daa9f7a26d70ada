"""The node's SQLite file: event log, current state, and local-only metadata.

The ``applied`` table is the version vector: the highest sequence number applied per
origin (with its HLC stamp, so the clock never goes back even when compaction deleted the
event). The log may hold events beyond it: after a snapshot replaced the state, this
node's own and other unreplayed events wait there to be applied again (see
``Replica.load``). ``meta`` holds ``compacted``, the vector up to which the log was
truncated: an event at or below it is kept only while a state register refers to it; and
``stable``, below which tombstones were causally stable (``protocol.compaction``).

One writer at a time (the caller serialises writes with a lock), in WAL mode. A durable
commit uses ``synchronous=FULL``, so an acknowledged write survives power loss. Events from
peers are committed without the ``fsync`` (``durable=False``): every node that reported
them synced them first, and a power cut loses only the last commits (WAL recovery stops at
the first bad checksum), which peers send again. The node
calls ``sync`` before it tells a peer what it has (``NodeState.durable``): an ``fsync`` of
the WAL, which holds every commit not yet checkpointed (a checkpoint syncs the WAL before
it copies it). The connection allows use from worker threads because commits run off the
trio thread.

Checkpoints (copying the WAL into the database file) run on a second connection of their
own, from a worker thread (``checkpoint``): SQLite's automatic checkpoint runs inside the
commit that fills the WAL, and there it held the node's event loop for 5-8 ms, with two
``fsync``, every 70 or so events from peers. The automatic one stays, at
``FALLBACK_CHECKPOINT_PAGES``, for a process that does not run ``checkpoint`` (tools that
open the file offline) and for a WAL that grows faster than the worker keeps up with.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from node.registers import Register
from protocol.events import SignedEvent, decode_event

SCHEMA_VERSION = 1
FALLBACK_CHECKPOINT_PAGES = 10_000
"""WAL pages at which a commit checkpoints by itself (SQLite's default is 1,000)."""
log = logging.getLogger("peer53.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    hlc INTEGER NOT NULL,
    wire BLOB NOT NULL,
    PRIMARY KEY (origin, seq)
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT,
    hlc INTEGER NOT NULL,
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS state_event ON state (origin, seq);
CREATE TABLE IF NOT EXISTS applied (
    origin TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL
);
"""
_UNAPPLIED = (
    "seq > coalesce((SELECT applied.seq FROM applied WHERE applied.origin = events.origin), 0)"
)
_UNREFERENCED = (
    "origin = ? AND seq <= ? AND NOT EXISTS"
    " (SELECT 1 FROM state WHERE state.origin = events.origin AND state.seq = events.seq)"
)


@dataclass(frozen=True)
class Install:
    """A snapshot to install: the vector it is at, replacing the applied one."""

    vv: dict[str, int]


class StorageFailed(Exception):
    """Syncing the WAL failed. Linux reports a write-back error once and may drop the pages
    it could not write, so a later sync that succeeds proves nothing: the node stops
    promising anything to peers until it is restarted (and recovers from what is on disk)."""


class Database:
    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        (mode,) = self.db.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot use WAL mode (got {mode!r})")
        self.db.execute("PRAGMA synchronous=FULL")
        self._full_sync = True  # the mode set last: each change of it is a statement
        self.db.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
        self.path = path
        self._checkpointer: sqlite3.Connection | None = None
        self.db.executescript(_SCHEMA)
        # Where SQLite itself writes the WAL: it resolves symbolic links in the file name.
        main_file = next(
            row[2] for row in self.db.execute("PRAGMA database_list") if row[1] == "main"
        )
        self.wal_path = main_file + "-wal"
        self.sync_failure: OSError | sqlite3.Error | None = None
        # Transactions of ``commit``, and how many of them are known to be on disk. What
        # the file held when opened counts as one not known to be: a node killed after
        # committing peers' events without an fsync finds them in the OS's cache.
        self.commits = 1
        self.synced = 0

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.db.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database file, without waiting for readers or
        the writer (a PASSIVE checkpoint): WAL frames, and how many of them are copied
        now. For one worker thread at a time. It syncs the WAL before it copies, as every
        checkpoint does, and the database file after (``synchronous=NORMAL``).

        A failed checkpoint leaves the WAL as it was, to be copied next time; one that
        failed on I/O counts as a failed sync (``StorageFailed``), since the ``fsync`` in
        it may be what failed."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(str(self.path), check_same_thread=False)
                self._checkpointer.execute("PRAGMA synchronous=NORMAL")
            row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_IOERR:
                self.sync_failure = exc
                log.critical("checkpointing %s failed (%s); restart the node", self.path, exc)
            else:
                log.warning("checkpointing %s failed (%s); trying again later", self.path, exc)
            return 0, 0
        _, frames, copied = row
        return int(frames), int(copied)

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self._atomic():
            self.db.table("meta").upsert_all(
                ({"key": k, "value": v} for k, v in values.items()), pk="key"
            )

    def registers(self) -> Iterator[tuple[str, Register]]:
        """Every stored register. A row whose value is not JSON is skipped with a warning:
        the key then differs from every peer's, and anti-entropy replaces it."""
        rows = self.db.execute("SELECT key, value, hlc, origin, seq, event_id FROM state")
        for key, text, hlc, origin, seq, event_id in rows:
            try:
                parsed = None if text is None else json.loads(text)
            except (ValueError, TypeError):
                log.warning("state row %r is damaged; it will be repaired from a peer", key)
                continue
            yield key, Register(parsed, hlc, origin, seq, event_id, text)

    def version_vector(self) -> dict[str, int]:
        rows = self.db.execute("SELECT origin, seq FROM applied")
        return {origin: seq for origin, seq in rows}

    def compacted(self) -> dict[str, int]:
        return self._vector("compacted")

    def stable(self) -> dict[str, int]:
        """The vector below which tombstones were causally stable at the last compaction."""
        return self._vector("stable")

    def _vector(self, key: str) -> dict[str, int]:
        text = self.meta(key)
        return {} if text is None else dict(json.loads(text))

    def last_hlc(self) -> int:
        row = self.db.execute(
            "SELECT max(hlc) FROM (SELECT hlc FROM events UNION ALL SELECT hlc FROM applied)"
        ).fetchone()
        return int(row[0] or 0)

    def unapplied(self) -> list[SignedEvent]:
        """Logged events beyond the applied vector: what a snapshot did not cover."""
        rows = self.db.execute(f"SELECT wire FROM events WHERE {_UNAPPLIED} ORDER BY origin, seq")
        return [decode_event(bytes(wire), verify=False) for (wire,) in rows]

    def logged_upto(self, origin: str, applied: int) -> int:
        """The end of the gapless run of ``origin``'s logged events from ``applied``."""
        rows = self.db.execute(
            "SELECT seq FROM events WHERE origin = ? AND seq > ? ORDER BY seq", [origin, applied]
        )
        for (seq,) in rows:
            if seq != applied + 1:
                break
            applied = seq
        return applied

    @contextmanager
    def _atomic(self, durable: bool = True) -> Iterator[None]:
        """A transaction committed with an ``fsync`` (``synchronous=FULL``) or without
        (``NORMAL``). The mode is set only when it changes: a stream of peers' events then
        costs no extra statements."""
        if durable != self._full_sync:
            self.db.execute("PRAGMA synchronous=" + ("FULL" if durable else "NORMAL"))
            self._full_sync = durable
        with self.db.atomic():
            yield

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[None]:
        with self._atomic(durable):
            yield
        self.commits += 1
        if durable:
            self.synced = self.commits

    def sync(self) -> None:
        """Put every commit so far on disk: ``fsync`` the WAL, as a FULL commit would. It
        does not touch the connection, so it may run in a worker thread while a long commit
        holds the write lock; the caller counts what it covered. The WAL exists while the
        connection is open. StorageFailed if this or an earlier sync failed."""
        if self.sync_failure is not None:
            raise StorageFailed(f"an earlier sync of {self.wal_path} failed: {self.sync_failure}")
        fd = os.open(self.wal_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError as exc:
            self.sync_failure = exc
            log.critical("syncing %s failed (%s); restart the node", self.wal_path, exc)
            raise StorageFailed(f"syncing {self.wal_path} failed: {exc}") from exc
        finally:
            os.close(fd)

    def forget(self, events: Iterable[SignedEvent]) -> int:
        """Delete logged copies of events refused for good; never an applied one."""
        with self._atomic():
            return sum(
                self.db.conn.execute(
                    f"DELETE FROM events WHERE origin = ? AND seq = ? AND id = ? AND {_UNAPPLIED}",
                    [e.body.origin, e.body.seq, e.id],
                ).rowcount
                for e in events
            )

    def truncate(self, upto: Mapping[str, int], stable: Mapping[str, int]) -> int:
        """Delete the events at or below ``upto`` that no state register refers to, raise
        ``compacted`` to it and keep the ``stable`` vector; how many events went."""
        with self._atomic():
            self.db.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('stable', ?)",
                [json.dumps(dict(stable), sort_keys=True)],
            )
            return self._truncate(upto)

    def _truncate(self, upto: Mapping[str, int]) -> int:
        conn = self.db.conn
        gone = 0
        for origin, seq in upto.items():
            gone += conn.execute(
                f"DELETE FROM events WHERE {_UNREFERENCED}", [origin, seq]
            ).rowcount
        compacted = self.compacted()
        for origin, seq in upto.items():
            compacted[origin] = max(compacted.get(origin, 0), seq)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('compacted', ?)",
            [json.dumps(compacted, sort_keys=True)],
        )
        return gone

    def sizes(self) -> dict[str, int]:
        """Rows and bytes, for status and metrics."""
        events, log_bytes = self.db.execute(
            "SELECT count(*), coalesce(sum(length(wire)), 0) FROM events"
        ).fetchone()
        (state,) = self.db.execute("SELECT count(*) FROM state").fetchone()
        (tombstones,) = self.db.execute("SELECT count(*) FROM state WHERE value IS NULL").fetchone()
        return {
            "log_events": events,
            "log_bytes": log_bytes,
            "state_keys": state,
            "tombstones": tombstones,
        }

    def event(self, origin: str, seq: int) -> SignedEvent | None:
        row = self.db.execute(
            "SELECT wire FROM events WHERE origin = ? AND seq = ?", [origin, seq]
        ).fetchone()
        return None if row is None else decode_event(bytes(row[0]), verify=False)

    def commit(
        self,
        events: Sequence[SignedEvent],
        changes: Mapping[str, Register],
        dropped: Iterable[str],
        install: Install | None = None,
        logged: Sequence[SignedEvent] = (),
        durable: bool = True,
    ) -> None:
        """Append events and write their state changes in one transaction. An
        event may already be in the log: one applied again after a snapshot. With
        ``install``, the events are a snapshot's, the applied vector is replaced by its
        vector, and the log is truncated to it. ``logged`` events were applied before and
        are only stored again (anti-entropy brought a register whose event compaction had
        deleted); they do not move the vector. ``durable=False`` skips the ``fsync``."""
        with self._transaction(durable):
            conn = self.db.conn
            conn.executemany(
                "INSERT OR IGNORE INTO events (origin, seq, id, hlc, wire) VALUES (?, ?, ?, ?, ?)",
                ((e.body.origin, e.body.seq, e.id, e.body.hlc, e.to_wire()) for e in logged),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO events (origin, seq, id, hlc, wire) VALUES (?, ?, ?, ?, ?)",
                ((e.body.origin, e.body.seq, e.id, e.body.hlc, e.to_wire()) for e in events),
            )
            if install is None:
                newest = {e.body.origin: e for e in events}
                conn.executemany(
                    "INSERT OR REPLACE INTO applied (origin, seq, hlc) VALUES (?, ?, ?)",
                    ((o, e.body.seq, e.body.hlc) for o, e in newest.items()),
                )
            conn.executemany(
                "INSERT OR REPLACE INTO state (key, value, hlc, origin, seq, event_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        key,
                        r.text,
                        r.hlc,
                        r.origin,
                        r.seq,
                        r.event_id,
                    )
                    for key, r in changes.items()
                ),
            )
            conn.executemany("DELETE FROM state WHERE key = ?", ((k,) for k in dropped))
            if install is not None:
                last = self.last_hlc()  # a floor for this node's clock, as before
                conn.execute("DELETE FROM applied")
                conn.executemany(
                    "INSERT INTO applied (origin, seq, hlc) VALUES (?, ?, ?)",
                    ((o, seq, last) for o, seq in install.vv.items()),
                )
                self._truncate(install.vv)
