"""The node's SQLite file: event log, current state, and local-only metadata.

One writer at a time (the caller serialises writes with a lock) and every commit uses
``synchronous=FULL`` in WAL mode, so an acknowledged write survives power loss. The
connection allows use from worker threads because commits run off the trio thread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import sqlite_utils

from node.registers import Register
from protocol.events import SignedEvent, decode_event

SCHEMA_VERSION = 1
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
"""


class Database:
    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self.db.atomic():
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
        rows = self.db.execute("SELECT origin, max(seq) FROM events GROUP BY origin")
        return {origin: seq for origin, seq in rows}

    def last_hlc(self) -> int:
        row = self.db.execute("SELECT max(hlc) FROM events").fetchone()
        return int(row[0] or 0)

    def event_wires(self, origin: str, after: int) -> Iterator[bytes]:
        rows = self.db.execute(
            "SELECT wire FROM events WHERE origin = ? AND seq > ? ORDER BY seq", [origin, after]
        )
        for (wire,) in rows:
            yield bytes(wire)

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
    ) -> None:
        """Append events and write their state changes in one durable transaction."""
        with self.db.atomic():
            conn = self.db.conn
            conn.executemany(
                "INSERT INTO events (origin, seq, id, hlc, wire) VALUES (?, ?, ?, ?, ?)",
                ((e.body.origin, e.body.seq, e.id, e.body.hlc, e.to_wire()) for e in events),
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
