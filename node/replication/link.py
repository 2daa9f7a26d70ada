"""One established peer link: a reader task, a writer task, and what is known of the peer.

The writer is the only task that sends (two senders on one TLS stream is an error, and a
cancelled send breaks it). It sends in batches, read from the log by cursor (never
queued), in two kinds of round:

- a quick round when events were applied here or the peer asked for something: this
  node's own new events, with a PING after them when a local ``?wait`` waits for the
  peer, and a PONG once the peer's events that its PING showed are applied here (so a
  write that nobody waits for costs no acknowledgement until the next heartbeat);
- a full round every heartbeat: everything else the peer lacks, relayed from other
  origins (``RelayWindow`` says up to where), and this node's vector (or a PING when
  there is nothing new).

An event of another origin is relayed only when a report of the peer's vector, read here
a heartbeat or more after this node had the event, still lacks it. In a healthy mesh
every origin reaches every node directly within that time, so nothing is sent twice; when
a link is cut, its traffic goes round it within about four heartbeats; while reports stop
coming (the peer, or this node's reading of them, is held up) nothing more is relayed, so
a busy cluster is not loaded further with copies. The reader closes the link when the
peer is silent for ``dead_after``.

A peer that lacks events below this node's compaction point cannot get them from its
log. Its other events still flow; if it is still behind after two full rounds (another
member may have what it lacks), the writer sends it a snapshot instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from node.replication.eventlog import EventLog
from node.replication.snapshots import Snapshots
from node.replication.wire import (
    LINK_ERRORS,
    MAX_EVENT_BYTES_PER_MESSAGE,
    MessageStream,
    event_batches,
)
from protocol.events import SignedEvent
from protocol.peer import (
    MAX_EVENTS_PER_MESSAGE,
    Descend,
    Error,
    Events,
    Fetch,
    Message,
    Nodes,
    Ping,
    Pong,
    Pull,
    Repair,
    Root,
    Snapshot,
)

log = logging.getLogger("peer53.link")
# Events read per origin per writer round; the writer loops at once while more remain.
ROUND_EVENTS = MAX_EVENTS_PER_MESSAGE
ROUND_BYTES = 2 * MAX_EVENT_BYTES_PER_MESSAGE


@dataclass
class PeerView:
    """What this node knows of one peer; outlives its links."""

    acked: dict[str, int] = field(default_factory=dict)  # the peer's vector, as last reported
    last_seen_ms: int | None = None

    def saw(self) -> None:
        self.last_seen_ms = time.time_ns() // 1_000_000

    def ack(self, vv: Mapping[str, int]) -> bool:
        """Merge a reported vector; True when it moved."""
        return raise_to(self.acked, vv.items())


def raise_to(vector: dict[str, int], seen: Iterable[tuple[str, int]]) -> bool:
    """Raise each origin's entry to what was seen; True when any moved."""
    moved = False
    for origin, seq in seen:
        if seq > vector.get(origin, 0):
            vector[origin] = seq
            moved = True
    return moved


RELAY_ROUNDS_KEPT = 32
"""Full rounds' vectors a ``RelayWindow`` keeps while the peer's reports lag; past this,
the newest is overwritten, which only delays relaying."""


class RelayWindow:
    """Up to where a full round may relay other origins' events to the peer.

    An event is relayed only when a report of the peer's vector, read at least ``grace``
    after this node had the event, still lacks it: the peer had about that long to get it
    from its origin, so that path is likely cut. Without the wait, an event that is merely
    slow (the cluster is busy) would be sent twice, which makes the cluster busier still.
    While no report comes, nothing more is relayed. A report is dated when it is read, not
    when it was made (the protocol carries no time): one read late, behind a backlog, can
    still let through a copy of an event that was on its way. Sans-IO: the caller passes
    the time."""

    def __init__(self, vv: Mapping[str, int], now: float) -> None:
        # The HELLO just received is the first report: what this node has now goes in
        # the first full round.
        self._rounds: deque[tuple[float, dict[str, int]]] = deque([(-math.inf, dict(vv))])
        self._reported_at = now

    def reported(self, now: float) -> None:
        """The peer's vector arrived (a PING or PONG)."""
        self._reported_at = now

    def full_round(self, now: float, vv: Mapping[str, int], grace: float) -> dict[str, int]:
        """The vector this round may relay up to; ``vv`` is what this node has now."""
        rounds = self._rounds
        while len(rounds) > 1 and rounds[1][0] <= self._reported_at - grace:
            rounds.popleft()
        upto = rounds[0][1]
        if len(rounds) >= RELAY_ROUNDS_KEPT:
            rounds.pop()
        rounds.append((now, dict(vv)))
        return upto


class LinkRefused(Exception):
    """The peer ended the link with an ERROR, e.g. because it no longer counts this node
    as a member; the dialler backs off as after a failed connection."""


Ingest = Callable[["Link", list[SignedEvent]], Awaitable[None]]
OnRepair = Callable[["Link", Message], Awaitable[None]]
OnSnapshot = Callable[["Link", Snapshot], Awaitable[None]]
SNAPSHOT_AFTER_ROUNDS = 2
"""Full rounds a peer stays behind the compaction point before the lowest-ranked member
sends it a snapshot; each member ranked above waits one round more, so that the peer has
usually installed one before the next member would send another."""
SNAPSHOT_BACKOFF_CAP = 64
"""While the peer stays behind after a snapshot (it refused it, say), the wait before the
next doubles, up to this many rounds."""


class SnapshotPacing:
    """When a link sends its peer a snapshot, told at each full round whether the peer is
    behind this node's compaction point."""

    def __init__(self, rank: int) -> None:
        self._first = SNAPSHOT_AFTER_ROUNDS + rank
        self._wait = self._first
        self._rounds = 0

    def send_now(self, behind: bool) -> bool:
        if not behind:
            self._rounds, self._wait = 0, self._first
            return False
        self._rounds += 1
        if self._rounds <= self._wait:
            return False
        self._rounds, self._wait = 0, min(2 * self._wait, SNAPSHOT_BACKOFF_CAP)
        return True


class Link:
    def __init__(
        self,
        peer_id: str,
        stream: MessageStream,
        view: PeerView,
        dialled_by: str,
        me: str,
        vv: Mapping[str, int],
        log_: EventLog,
        snapshots: Snapshots,
        compacted: Mapping[str, int],
        durable: Callable[[], Awaitable[None]],
        snapshot_rank: int = 0,
    ) -> None:
        self.peer_id = peer_id
        self.me = me
        self.stream = stream
        self.view = view
        self.dialled_by = dialled_by
        self._vv = vv  # this node's live version vector
        self._log = log_
        self._snapshots = snapshots
        self._compacted = compacted  # this node's live compaction point
        self._durable = durable  # waits until what this node applied is on disk
        self._pacing = SnapshotPacing(snapshot_rank)
        self.sent: dict[str, int] = dict(view.acked)  # per origin: the peer has up to here
        self._wake = trio.Event()
        self._pong_due = False
        self._ping_due = False
        self._ack_at = 0  # PONG once the peer's own events up to here are applied
        self._acked_sent: dict[str, int] = {}
        self._relay = RelayWindow(vv, trio.current_time())
        self._relay_upto: dict[str, int] = {}
        self._queued: list[Message] = []
        self._pulled: dict[str, float] = {}  # origin -> when last asked for
        self.closed = trio.Event()
        self.refusal: Error | None = None  # the ERROR the peer ended the link with
        self._cancel = trio.CancelScope()

    def wake(self) -> None:
        self._wake.set()

    def request_ack(self) -> None:
        """Ask the peer to say as soon as it has applied what this node sent it."""
        self._ping_due = True
        self.wake()

    @property
    def ack_pending(self) -> bool:
        return self._ack_at > 0

    def request_pull(self, pull: Pull, interval: float) -> None:
        """Ask the peer to resend an origin's events; at most once per ``interval``."""
        now = trio.current_time()
        if now - self._pulled.get(pull.origin, -interval) >= interval:
            self._pulled[pull.origin] = now
            self.send_soon([pull])

    def send_soon(self, messages: list[Message]) -> None:
        """Queue messages for the writer, ahead of its next events."""
        if messages:
            self._queued.extend(messages)
            self.wake()

    def close(self) -> None:
        self._cancel.cancel()

    def peer_has(self, events: list[SignedEvent]) -> None:
        raise_to(self.sent, ((e.body.origin, e.body.seq) for e in events))

    async def run(
        self,
        ingest: Ingest,
        on_ack: Callable[[], None],
        on_repair: OnRepair,
        on_snapshot: OnSnapshot,
        heartbeat: float,
        dead_after: float,
    ) -> None:
        """Serve the link until it fails or is closed; never raises for link errors."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, self._write_loop(heartbeat))
                    await self._guarded(
                        self._read_loop(ingest, on_ack, on_repair, on_snapshot, dead_after)
                    )
        finally:
            self.closed.set()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _guarded(self, loop: Coroutine[Any, Any, None]) -> None:
        """Either loop ending, normally or by a link error, ends the link."""
        try:
            await loop
        except LINK_ERRORS as exc:
            log.debug("link to %s failed: %r", self.peer_id[:12], exc)
        finally:
            self._cancel.cancel()

    async def _read_loop(
        self,
        ingest: Ingest,
        on_ack: Callable[[], None],
        on_repair: OnRepair,
        on_snapshot: OnSnapshot,
        dead_after: float,
    ) -> None:
        while True:
            with trio.move_on_after(dead_after) as timer:
                message = await self.stream.receive()
            if timer.cancelled_caught:
                log.warning(
                    "peer %s silent for %.1f s; closing the link", self.peer_id[:12], dead_after
                )
                return
            self.view.saw()
            match message:
                case Events():
                    self.peer_has(message.events)
                    await ingest(self, message.events)
                case Ping() | Pong():
                    self._relay.reported(trio.current_time())
                    if self.view.ack(message.vv):
                        on_ack()
                    raise_to(self.sent, message.vv.items())
                    if isinstance(message, Ping):
                        theirs = message.vv.get(self.peer_id, 0)
                        if theirs > self._vv.get(self.peer_id, 0):
                            self._ack_at = max(self._ack_at, theirs)  # once they apply
                        else:
                            self._pong_due = True
                        self.wake()
                case Pull():
                    self.sent[message.origin] = min(self.sent.get(message.origin, 0), message.after)
                    self.wake()
                case Root() | Descend() | Nodes() | Fetch() | Repair():
                    await on_repair(self, message)
                case Snapshot():
                    await on_snapshot(self, message)
                case Error():
                    self.refusal = message
                    return
                case _:
                    log.warning(
                        "peer %s sent an unexpected %s; closing the link",
                        self.peer_id[:12],
                        type(message).__name__,
                    )
                    return

    def _missing(self, full: bool) -> tuple[list[SignedEvent], bool]:
        """The next events the peer lacks, and whether more remain after them: own events
        in any round, other origins' in full rounds up to the relay window's vector."""
        events: list[SignedEvent] = []
        more = False
        budget = ROUND_BYTES
        for origin, newest in list(self._vv.items()):
            if origin == self.me:
                seq = newest
            elif full:
                seq = min(newest, self._relay_upto.get(origin, 0))
            else:
                continue
            after = self.sent.get(origin, 0)
            if seq <= after or after < self._compacted.get(origin, 0):
                continue
            if budget <= 0:
                more = True
                break
            batch = self._log.after(origin, after, seq, ROUND_EVENTS, budget)
            events.extend(batch)
            budget -= sum(len(e.to_wire()) for e in batch)
            if batch:
                self.sent[origin] = batch[-1].body.seq
                more = more or batch[-1].body.seq < seq
        return events, more

    def _behind(self) -> bool:
        """The peer lacks events that this node's log may no longer hold."""
        return any(
            self.sent.get(origin, 0) < min(seq, self._vv.get(origin, 0))
            for origin, seq in self._compacted.items()
        )

    async def _send_snapshot(self) -> None:
        async with self._snapshots.take() as (vv, messages):
            log.info(
                "peer %s is behind this node's compacted log; sending a snapshot", self.peer_id[:12]
            )
            for message in messages:
                await self.stream.send([message])
        raise_to(self.sent, vv.items())

    async def _write_loop(self, heartbeat: float) -> None:
        next_full = trio.current_time()
        while True:
            with trio.move_on_at(next_full):
                await self._wake.wait()
            self._wake = trio.Event()
            full = trio.current_time() >= next_full
            if full and self._pacing.send_now(self._behind()):
                await self._send_snapshot()
            if full:  # the vector and its time taken together, after any snapshot
                now = trio.current_time()
                self._relay_upto = self._relay.full_round(now, self._vv, heartbeat)
            events, more = self._missing(full)
            messages: list[Message] = [*self._queued, *event_batches(events)]
            self._queued.clear()
            vv = dict(self._vv)
            applied = 0 < self._ack_at <= vv.get(self.peer_id, 0)
            pong = self._pong_due or applied or (full and vv != self._acked_sent)
            if pong:
                messages.append(Pong(vv))
                self._pong_due = False
                self._acked_sent = vv
                if applied:
                    self._ack_at = 0
            if self._ping_due or (full and not pong):
                messages.append(Ping(vv))
                self._ping_due = False
            if full:
                next_full = trio.current_time() + heartbeat
            if any(isinstance(m, Ping | Pong) for m in messages):
                await self._durable()  # a vector sent is a promise: it must survive power loss
            if messages:
                await self.stream.send(messages)
            if more:
                self.wake()
