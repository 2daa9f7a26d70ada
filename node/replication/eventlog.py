"""Reading events to send to peers: recent ones from memory, older ones from SQLite.

A link does not queue events for its peer; it keeps a cursor per origin (what the peer
has or was sent) and reads the next events when it can send. So a slow or dead peer
costs no memory, and one that falls behind catches up from the log. Recent events are
kept in memory because live push reads them at once, many times (once per peer).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from protocol.events import SignedEvent, decode_event

RECENT_PER_ORIGIN = 4096


class EventLog:
    def __init__(self, db_path: Path, keep: int = RECENT_PER_ORIGIN) -> None:
        # A connection of its own: the write path's connection may hold an open
        # transaction in a worker thread, and WAL lets this one read committed data.
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        self._keep = keep
        self._recent: dict[str, deque[SignedEvent]] = {}

    def close(self) -> None:
        self._conn.close()

    def forget(self) -> None:
        """A snapshot replaced the state: what is remembered may be gone from the log."""
        self._recent.clear()

    def remember(self, events: Iterable[SignedEvent]) -> None:
        """Called in apply order, so each origin's deque holds consecutive seqs."""
        for event in events:
            recent = self._recent.setdefault(event.body.origin, deque(maxlen=self._keep))
            if recent and recent[-1].body.seq + 1 != event.body.seq:
                recent.clear()
            recent.append(event)

    def after(
        self, origin: str, seq: int, upto: int, limit: int, max_bytes: int
    ) -> list[SignedEvent]:
        """Applied events of ``origin`` after ``seq`` up to ``upto`` (the log may also
        hold pending ones beyond): at most ``limit`` of them, and no more than
        ``max_bytes`` of wire unless the first alone is larger."""
        limit = min(limit, upto - seq)
        if limit <= 0:
            return []
        recent = self._recent.get(origin)
        if recent and recent[0].body.seq <= seq + 1:
            start = seq + 1 - recent[0].body.seq
            found: Iterable[SignedEvent] = (
                recent[i] for i in range(start, min(len(recent), start + limit))
            )
        else:
            rows = self._conn.execute(
                "SELECT wire FROM events WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
                [origin, seq, limit],
            )
            found = (decode_event(bytes(wire), verify=False) for (wire,) in rows)  # checked once
        out: list[SignedEvent] = []
        size = 0
        for event in found:
            size += len(event.to_wire())
            if out and size > max_bytes:
                break
            out.append(event)
        return out

    def id_of(self, origin: str, seq: int) -> str | None:
        """The id of the applied event (origin, seq), to tell a duplicate from a reuse."""
        recent = self._recent.get(origin)
        if recent and recent[0].body.seq <= seq <= recent[-1].body.seq:
            return recent[seq - recent[0].body.seq].id
        row = self._conn.execute(
            "SELECT id FROM events WHERE origin = ? AND seq = ?", [origin, seq]
        ).fetchone()
        return None if row is None else str(row[0])

    def hlc_of(self, origin: str, seq: int) -> int | None:
        row = self._conn.execute(
            "SELECT hlc FROM events WHERE origin = ? AND seq = ?", [origin, seq]
        ).fetchone()
        return None if row is None else int(row[0])
