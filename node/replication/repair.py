"""Anti-entropy on the peer links: offering roots, driving rounds, answering, repairing.

Per pair of members, the node with the higher id offers its Merkle root (ROOT) after
every reconnect and then every ``repair_interval``, but only when the peer's last reported
vector equals its own: while events are in flight the roots differ for a reason that
replication itself removes. The other node compares, and drives a round when its root
differs (see ``protocol.repair``), so each pair runs at most one round at a time.

What the peer sends is applied only from signed events this node already applied (their
ids match the log's), to the listed keys only: a key missing here, damaged here (not what
its own event wrote), or older than the peer's is replaced, and an intact newer one here is
sent back. Events this node has not applied yet go through normal ingest. Damaged keys
that no peer holds are dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import trio

from node.registers import Register, wins
from node.replication.eventlog import EventLog
from node.replication.link import Link
from node.replication.wire import MAX_EVENT_BYTES_PER_MESSAGE
from node.service import NodeState
from protocol.compaction import Stability, is_stable
from protocol.events import EventError, SignedEvent, verify_signature
from protocol.peer import (
    MAX_EVENTS_PER_MESSAGE,
    MAX_KEYS_PER_MESSAGE,
    Descend,
    Fetch,
    Message,
    Nodes,
    Repair,
    Root,
)
from protocol.repair import RepairRound, describe

log = logging.getLogger("peer53.repair")
REPAIR_MESSAGES = (Root, Descend, Nodes, Fetch, Repair)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class RepairStats:
    """Anti-entropy with one peer, as seen by this node."""

    checks: int = 0  # roots compared here with the peer's
    rounds: int = 0  # rounds driven here to the end
    last_check_ms: int | None = None
    last_round_ms: int | None = None
    last_differences: int = 0  # keys found differing in the last round
    last_round_trips: int = 0
    keys_repaired: int = 0  # keys changed here while repairing with this peer
    keys_sent: int = 0
    keys_received: int = 0
    bytes_sent: int = 0  # every anti-entropy message, both directions
    bytes_received: int = 0


Ingest = Callable[[Link, list[SignedEvent]], Awaitable[None]]


class Repairer:
    def __init__(
        self, state: NodeState, log_: EventLog, ingest: Ingest, stability: Stability
    ) -> None:
        self.state = state
        self._log = log_
        self._ingest = ingest
        # A tombstone this node may purge is neither sent nor taken: the side that lacks it
        # purged it, and this side will (DESIGN: a purged key counts as deleted).
        self._stability = stability
        self.stats: dict[str, RepairStats] = {}
        self._links: dict[str, Link] = {}  # the current link per peer
        self._rounds: dict[str, RepairRound] = {}
        self._next_round = 1
        self._next_offer: dict[str, float] = {}

    def _stats(self, peer_id: str) -> RepairStats:
        return self.stats.setdefault(peer_id, RepairStats())

    def tally(self, peer_id: str) -> Callable[[Message, int, bool], None]:
        """Counts the bytes of anti-entropy messages on one link."""
        stats = self._stats(peer_id)

        def count(message: Message, size: int, sent: bool) -> None:
            if isinstance(message, REPAIR_MESSAGES):
                if sent:
                    stats.bytes_sent += size
                else:
                    stats.bytes_received += size

        return count

    def link_up(self, link: Link) -> None:
        """A new link, which may replace one (both nodes dialled at once): rounds live on
        one link, so a round open on the old one, whose answers can no longer come, is
        dropped, and what is still in flight on the old one is ignored."""
        self._links[link.peer_id] = link
        self._rounds.pop(link.peer_id, None)
        self._next_offer[link.peer_id] = trio.current_time()

    def link_down(self, peer_id: str) -> None:
        self._links.pop(peer_id, None)
        self._rounds.pop(peer_id, None)
        self._next_offer.pop(peer_id, None)

    def offer(self, link: Link, peer_vv: Mapping[str, int], interval: float) -> None:
        """Send ROOT if it is this node's turn, it is due and the vectors agree."""
        replica = self.state.replica
        due = self._next_offer.get(link.peer_id)
        if (
            link.peer_id > link.me
            or due is None
            or trio.current_time() < due
            or dict(peer_vv) != replica.vv
        ):
            return
        self._next_offer[link.peer_id] = trio.current_time() + interval
        link.send_soon([Root(replica.registers.merkle.root(), dict(replica.vv))])

    async def handle(self, link: Link, message: Message) -> None:
        if self._links.get(link.peer_id) is not link:
            return
        tree = self.state.replica.registers.merkle
        stats = self._stats(link.peer_id)
        match message:
            case Root():
                stats.checks += 1
                stats.last_check_ms = _now_ms()
                if (
                    message.vv == self.state.replica.vv
                    and message.root != tree.root()
                    and link.peer_id not in self._rounds
                ):
                    started = self._rounds[link.peer_id] = RepairRound(self._next_round)
                    self._next_round += 1
                    link.send_soon(started.begin())
            case Descend():
                answers = {prefix: describe(tree, prefix) for prefix in message.prefixes}
                link.send_soon([Nodes(message.round, answers)])
            case Nodes():
                answered = self._driven(link, message.round)
                if answered is not None:
                    requests, diff = answered.on_nodes(tree, message.nodes)
                    own = await self._own(link, diff.push, keep=diff.fetch)
                    pushes = list(self._pack(link, 0, own))
                    fetch = answered.fetch(diff.fetch - own.keys(), barrier=bool(pushes))
                    link.send_soon([*requests, *pushes, *fetch])
                    self._finish(link.peer_id, answered)
            case Fetch():
                own = await self._own(link, set(message.keys))
                link.send_soon(list(self._pack(link, message.round, own)))
            case Repair():
                await self._receive(link, message)
                if message.round and message.last:
                    fetched = self._driven(link, message.round)
                    if fetched is not None:
                        fetched.on_fetched()
                        self._finish(link.peer_id, fetched)

    def _driven(self, link: Link, round_id: int) -> RepairRound | None:
        driven = self._rounds.get(link.peer_id)
        if driven is None or driven.round_id != round_id:
            log.warning(
                "peer %s answered repair round %d, which is not open", link.peer_id[:12], round_id
            )
            return None
        return driven

    def _finish(self, peer_id: str, driven: RepairRound) -> None:
        """Count ``driven`` if it ended. A handler that waited (on a commit) may come back
        to find its round dropped, and another running: that one is not its to end."""
        if self._rounds.get(peer_id) is driven and driven.done:
            del self._rounds[peer_id]
            stats = self._stats(peer_id)
            stats.rounds += 1
            stats.last_round_ms = _now_ms()
            stats.last_differences = len(driven.differing)
            stats.last_round_trips = driven.round_trips
            if driven.differing:
                log.info(
                    "repair with %s: %d keys differed, %d round trips",
                    peer_id[:12],
                    len(driven.differing),
                    driven.round_trips,
                )

    async def _own(
        self, link: Link, keys: set[str], keep: AbstractSet[str] = frozenset()
    ) -> dict[str, SignedEvent]:
        """The events behind this node's intact registers for ``keys``. Damaged ones are
        dropped here, except those in ``keep``: the peer holds them, and what it sends
        replaces them."""
        own, damaged = self.state.replica.sources(keys)
        own = {k: e for k, e in own.items() if not self._purgeable(e, k)}
        damaged -= keep
        if damaged:
            log.warning("dropping %d damaged state entries found by repair", len(damaged))
            self._stats(link.peer_id).keys_repaired += await self.state.repair({}, damaged)
        return own

    def _pack(self, link: Link, round_id: int, own: Mapping[str, SignedEvent]) -> Iterator[Repair]:
        """REPAIR messages for ``own`` within the message limits; an answer to a FETCH
        always ends with one whose ``last`` is set."""
        by_event: dict[str, tuple[SignedEvent, list[str]]] = {}
        for key, event in sorted(own.items()):
            by_event.setdefault(event.id, (event, []))[1].append(key)
        stats = self._stats(link.peer_id)
        stats.keys_sent += len(own)
        events: list[SignedEvent] = []
        keys: list[str] = []
        size = 0
        for event, event_keys in by_event.values():
            for start in range(0, len(event_keys), MAX_KEYS_PER_MESSAGE):
                part = event_keys[start : start + MAX_KEYS_PER_MESSAGE]
                wire = len(event.to_wire())
                if events and (
                    len(events) >= MAX_EVENTS_PER_MESSAGE
                    or len(keys) + len(part) > MAX_KEYS_PER_MESSAGE
                    or size + wire > MAX_EVENT_BYTES_PER_MESSAGE
                ):
                    yield Repair(round_id, False, keys, events)
                    events, keys, size = [], [], 0
                events.append(event)
                keys.extend(part)
                size += wire
        if events or round_id:
            yield Repair(round_id, bool(round_id), keys, events)

    def _purgeable(self, event: SignedEvent, key: str) -> bool:
        body = event.body
        return body.writes[key] is None and is_stable(self._stability.stable, body.origin, body.seq)

    def _authentic(self, event: SignedEvent) -> bool:
        """An event this node applied, byte for byte; one whose log row is gone is
        checked by its signature."""
        body = event.body
        applied = self._log.id_of(body.origin, body.seq)
        if applied is not None:
            return applied == event.id
        if body.cluster != self.state.identity.cluster_id:
            return False
        try:
            verify_signature(event)
        except EventError:
            return False
        return True

    async def _receive(self, link: Link, message: Repair) -> None:
        replica = self.state.replica
        stats = self._stats(link.peer_id)
        stats.keys_received += len(message.keys)
        keys = set(message.keys)
        found: dict[str, tuple[Register, SignedEvent]] = {}
        unapplied: list[SignedEvent] = []
        for event in message.events:
            body = event.body
            if body.seq > replica.vv.get(body.origin, 0) or not self._authentic(event):
                unapplied.append(event)  # ingest applies, counts or alarms as for any event
                continue
            for key in keys & body.writes.keys():
                reg = Register.written(body.writes[key], event)
                if key not in found or wins(key, reg, found[key][0]):
                    found[key] = (reg, event)
        # A key whose winner is a tombstone this node may purge stays as it is: taking an
        # older write of it from the same message would bring the record back.
        found = {k: f for k, f in found.items() if not self._purgeable(f[1], k)}
        if unapplied:
            await self._ingest(link, unapplied)
        if not found:
            return
        own, _ = replica.sources(found)
        back = {}
        for key, event in own.items():
            local = replica.registers.get(key)
            if local is not None and local != found[key][0] and wins(key, local, found[key][0]):
                back[key] = event
        stats.keys_repaired += await self.state.repair(
            {k: found[k] for k in found.keys() - back.keys()}, set()
        )
        if back:
            link.send_soon(list(self._pack(link, 0, back)))
