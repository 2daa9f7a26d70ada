"""The node's peer links: accepting and dialling them, and applying what arrives.

Theory of operation:

- Every node listens on its peer port and dials every other active member, so a link
  forms as soon as either side can reach the other. When both dials succeed, the link
  dialled by the lower node id is kept on both sides; a new link from the same dialler
  replaces an old one (which may be dead without anyone having noticed yet).
- A link starts with HELLO both ways. The peer's node id must be the key of its TLS
  certificate and an active member. Its vector sets where this node's cursors start,
  so each side sends exactly what the other lacks; then live push and heartbeats
  (``node.replication.link``). Failed dials back off exponentially, capped, with jitter.
- Events from all links go through one ingest task: checks that need no state
  (cluster, signature, a known origin), then the causal buffer, then the replica's full
  checks and commit. A refused event is counted and logged once per peer and reason; it
  is never applied and so never relayed.
- Sequence numbers are never reused: if a peer's HELLO shows more of this node's own
  events than it has (it was restored from an older copy), local writes wait until they
  are back. At start, writes wait for the first HELLO, at most ``write_hold_ms``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import trio

from node.config import parse_address
from node.identity import IdentityFiles
from node.replica import EventWaits
from node.replication.admission import Admission
from node.replication.compaction import Compactor
from node.replication.delivery import (
    APPLY_CHUNK,
    BufferFull,
    CausalBuffer,
    units,
    whole_chunks,
)
from node.replication.eventlog import EventLog
from node.replication.link import Link, LinkRefused, PeerView
from node.replication.repair import Repairer
from node.replication.snapshots import Snapshots
from node.replication.tls import (
    PeerCertificateError,
    member_client_context,
    node_id_of_certificate,
    server_context,
)
from node.replication.wire import LINK_ERRORS, MessageStream
from node.service import DB_FILE, NodeState, WritesHeld
from node.store.database import StorageFailed
from protocol.canonical import JSONValue
from protocol.clock import hlc_physical_ms
from protocol.compaction import covers
from protocol.events import EventError, SignedEvent, verify_signature
from protocol.membership import cut_key
from protocol.peer import PROTOCOL_VERSION, Error, Hello, Pong, Pull, Snapshot, check_hello
from protocol.snapshot import SnapshotError
from protocol.statekeys import member_key

log = logging.getLogger("peer53.peering")
INGEST_QUEUE = 64
INLINE_SIGNATURES = 64  # more than this many are checked in a worker thread
# What one bad connection may raise; anything else is a bug, logged with a trace, and
# still ends only that connection. StorageFailed ends every link at its next report (it
# is logged once, when the sync fails): a node that cannot sync promises peers nothing.
CONNECTION_ERRORS = (*LINK_ERRORS, PeerCertificateError, LinkRefused, StorageFailed)


class Peering:
    def __init__(self, state: NodeState) -> None:
        self.state = state
        self.me = state.identity.node_id
        self.timers = state.config.peering
        files = IdentityFiles(state.data_dir)
        self._server_context = server_context(files)
        self._client_context = member_client_context(files)
        self.log = EventLog(state.data_dir / DB_FILE)
        self.snapshots = Snapshots(state)
        self.admission = Admission(state, self.snapshots)
        self.views: dict[str, PeerView] = {}
        self.compactor = Compactor(state, self.views, self.snapshots, self._other_members)
        self.repair = Repairer(state, self.log, self._ingest, self.compactor.stability)
        self.links: dict[str, Link] = {}
        self.buffer = CausalBuffer()
        self.rejected: Counter[str] = Counter()  # events, by reason
        self.copies = 0  # events received that were applied here already
        # Links refused at HELLO; "not_member" also counts a new member whose admission
        # has not reached this node yet (it retries), so it is kept apart from events.
        self.refused_links: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._announced: set[str] = set()  # members added by events still in the buffer
        # (origin, seq) of events the replica refused: not fetched or counted again.
        self._invalid: set[tuple[str, int]] = set()
        # A None link carries no events: it asks the loop to retry the held ones.
        send, receive = trio.open_memory_channel[tuple[Link | None, list[SignedEvent]]](
            INGEST_QUEUE
        )
        self._ingest_send, self._ingest_receive = send, receive
        self._acks = trio.Event()
        self._dialers: set[str] = set()
        self._closing: dict[str, Link] = {}  # links to close at the next round
        self._own_needed = 0
        self._reported_needed = 0
        self._hello_seen = False
        self._hold_expired = False
        self._held: list[SignedEvent] = []  # departed members' events waiting for reports
        self._recheck = False
        self._membership_changed = trio.Event()
        self._membership_changed.set()  # reports owed from before a restart
        state.on_applied.append(self._on_applied)

    # -- lifecycle -----------------------------------------------------------------------

    async def run(
        self, listeners: list[trio.SocketListener], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._other_members():
            self.state.hold_writes()
        self._adopt_pending(self.state.replica.pending())
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self._handle_inbound, listeners)
                nursery.start_soon(self._ingest_loop)
                nursery.start_soon(self._supervise, nursery)
                nursery.start_soon(self._write_hold_timer)
                nursery.start_soon(self._offer_roots)
                nursery.start_soon(self._report_cuts)
                nursery.start_soon(self.compactor.run)
                task_status.started()
        finally:
            self.log.close()

    def _other_members(self) -> list[str]:
        return [m for m in self.state.replica.active_members() if m != self.me]

    async def _supervise(self, nursery: trio.Nursery) -> None:
        """Dial every active member; close links to nodes that are no longer members, one
        round after a last PONG, so that a node that is leaving hears that its departure
        was applied. A node that left or was removed dials nobody, and keeps a link only
        until that peer has acknowledged every event of its own (its departure included)."""
        while True:
            members = set(self._other_members())
            if not self.state.replica.is_member(self.me):
                mine = self.state.replica.vv.get(self.me, 0)
                members = {m for m in members if self._view(m).acked.get(self.me, 0) < mine}
            for node_id in members - self._dialers:
                self._dialers.add(node_id)
                nursery.start_soon(self._dial_loop, node_id)
            for node_id, link in list(self.links.items()):
                if node_id in members:
                    continue
                if self._closing.get(node_id) is link:
                    del self._closing[node_id]
                    link.close()
                else:  # a last acknowledgement first: a departing node waits for it
                    self._closing[node_id] = link
                    link.send_soon([Pong(dict(self.state.replica.vv))])
            await trio.sleep(self.timers.heartbeat_ms / 1000)

    def _view(self, peer_id: str) -> PeerView:
        return self.views.setdefault(peer_id, PeerView())

    async def _offer_roots(self) -> None:
        interval = self.timers.repair_interval_ms / 1000
        while True:
            await trio.sleep(self.timers.heartbeat_ms / 1000)
            for peer_id, link in list(self.links.items()):
                self.repair.offer(link, self.views[peer_id].acked, interval)

    async def _write_hold_timer(self) -> None:
        await trio.sleep(self.timers.write_hold_ms / 1000)
        self._hold_expired = True
        if self.state.writes_held and not self._hello_seen:
            log.warning(
                "no peer reachable within %d ms of start; accepting writes",
                self.timers.write_hold_ms,
            )
        self._check_writes()

    # -- links ---------------------------------------------------------------------------

    async def _handle_inbound(self, tcp: trio.SocketStream) -> None:
        try:
            tls = trio.SSLStream(tcp, self._server_context, server_side=True)
            with trio.fail_after(self.timers.connect_timeout_ms / 1000):
                await tls.do_handshake()
            der = tls.getpeercert(binary_form=True)
            stream = MessageStream(tls)
            if not der:
                await self.admission(stream)
                return
            peer_id = node_id_of_certificate(der)
            await self._run_link(stream, peer_id, dialled_by=peer_id)
        except CONNECTION_ERRORS as exc:
            log.debug("inbound peer connection ended: %s", exc)
        except Exception:
            log.exception("inbound peer connection failed")
        finally:
            await trio.aclose_forcefully(tcp)

    async def _dial_loop(self, peer_id: str) -> None:
        backoff_min = self.timers.backoff_min_ms / 1000
        backoff = backoff_min
        failures = 0
        while self.state.replica.is_member(peer_id) and self.state.replica.is_member(self.me):
            link = self.links.get(peer_id)
            if link is not None:
                await link.closed.wait()
                backoff = backoff_min
            else:
                try:
                    if await self._dial(peer_id):
                        backoff, failures = backoff_min, 0
                except CONNECTION_ERRORS as exc:
                    failures += 1
                    if failures == 1:
                        log.info("cannot link to %s: %s (retrying)", peer_id[:12], exc)
                except Exception:
                    log.exception("the link to %s failed", peer_id[:12])
            await trio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, self.timers.backoff_max_ms / 1000)
        self._dialers.discard(peer_id)

    async def _dial(self, peer_id: str) -> bool:
        """One connection attempt; True if a link was established (and has now ended)."""
        value = self.state.replica.registers.value(member_key(peer_id))
        published = value["peer"] if isinstance(value, dict) else ""
        address = parse_address(
            self.state.config.dial_overrides.get(peer_id, published), "peer address"
        )
        if address.port == 0:
            raise OSError(f"member {peer_id[:12]} has not published its peer port yet")
        with trio.fail_after(self.timers.connect_timeout_ms / 1000):
            tcp = await trio.open_tcp_stream(address.host, address.port)
            tls = trio.SSLStream(tcp, self._client_context, server_hostname=None)
            try:
                await tls.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
        stream = MessageStream(tls)
        try:
            if node_id_of_certificate(tls.getpeercert(binary_form=True) or b"") != peer_id:
                raise PeerCertificateError(f"{address} answered with another node's certificate")
            return await self._run_link(stream, peer_id, dialled_by=self.me)
        finally:
            await stream.aclose()

    def _hello(self) -> Hello:
        replica = self.state.replica
        return Hello(
            PROTOCOL_VERSION,
            self.state.identity.cluster_id,
            self.me,
            dict(replica.vv),
            replica.registers.merkle.root(),
        )

    async def _run_link(self, stream: MessageStream, peer_id: str, dialled_by: str) -> bool:
        mine = self._hello()
        await self.state.durable()  # the vector it reports must survive a power loss
        await stream.send([mine])
        with trio.fail_after(self.timers.connect_timeout_ms / 1000):
            hello = await stream.receive()
        if not isinstance(hello, Hello):
            await stream.send([Error("protocol", "the first message must be HELLO")])
            return False
        error = check_hello(hello, self.state.identity.cluster_id, peer_id)
        if error is None and not self.state.replica.is_member(peer_id):
            error = Error("not_member", "this node is not an active member of the cluster")
        if error is not None:
            self._count(self.refused_links, error.code, peer_id, error.message)
            await stream.send([error])
            return False
        view = self._view(peer_id)
        view.saw()
        view.acked = dict(hello.vv)  # what it has now: after a restore, less than it acked
        self._note_hello(hello)
        replica = self.state.replica
        link = Link(
            peer_id,
            stream,
            view,
            dialled_by,
            self.me,
            replica.vv,
            self.log,
            self.snapshots,
            replica.compacted,
            self.state.durable,
            snapshot_rank=sum(1 for m in self._other_members() if m != peer_id and m < self.me),
        )
        if not self._register(link):
            return False
        log.info("link to %s up (dialled by %s)", peer_id[:12], dialled_by[:12])
        stream.tally = self.repair.tally(peer_id)
        self.repair.link_up(link)
        try:
            await link.run(
                self._ingest,
                self._acked,
                self.repair.handle,
                self._on_snapshot,
                self.timers.heartbeat_ms / 1000,
                self.timers.dead_after_ms / 1000,
            )
        finally:
            self.snapshots.forget(link)
            if self.links.get(peer_id) is link:
                del self.links[peer_id]
                self.repair.link_down(peer_id)
                log.info("link to %s down", peer_id[:12])
        if link.refusal is not None:
            raise LinkRefused(f"refused by the peer: {link.refusal.code}: {link.refusal.message}")
        return True

    def _register(self, link: Link) -> bool:
        """Keep one link per peer: the one dialled by the lower node id wins."""
        existing = self.links.get(link.peer_id)
        if existing is not None:
            preferred = min(self.me, link.peer_id)
            if existing.dialled_by == preferred and link.dialled_by != preferred:
                return False
            existing.close()
        self.links[link.peer_id] = link
        return True

    # -- applying events -----------------------------------------------------------------

    async def _ingest(self, link: Link, events: list[SignedEvent]) -> None:
        """Queue events for the ingest loop. The link's reader waits on its socket next,
        which yields anyway: a send that fits costs no extra pass of the scheduler."""
        try:
            self._ingest_send.send_nowait((link, events))
        except trio.WouldBlock:
            await self._ingest_send.send((link, events))

    def _count(self, counter: Counter[str], reason: str, peer_id: str, detail: str) -> None:
        counter[reason] += 1
        if (peer_id, reason) not in self._logged:
            self._logged.add((peer_id, reason))
            log.warning("refused from peer %s (%s): %s", peer_id[:12], reason, detail)

    def _reject(self, reason: str, peer_id: str, detail: str) -> None:
        self._count(self.rejected, reason, peer_id, detail)

    def _known_origin(self, origin: str) -> bool:
        return (
            origin in self._announced
            or self.state.replica.registers.get(member_key(origin)) is not None
        )

    async def _forged(self, events: list[SignedEvent]) -> set[str]:
        """Ids of events whose signature fails; many are checked off the trio thread, so
        a large catch-up never holds up DNS answers."""

        def check() -> set[str]:
            bad = set()
            for event in events:
                try:
                    verify_signature(event)
                except EventError:
                    bad.add(event.id)
            return bad

        if len(events) > INLINE_SIGNATURES:
            return await trio.to_thread.run_sync(check)
        return check()

    async def _screen(self, arrived: list[tuple[Link, list[SignedEvent]]]) -> None:
        """Checks that need no causal past, then the buffer.

        Copies of applied events are dropped unchecked. Every other event must be for
        this cluster, correctly signed, and follow its origin's earlier events (a vector at
        ``seq - 1``); an authentic one that differs from the applied
        event with its (origin, seq) is a reused sequence number. The rest must come from a
        known origin (or one that an admitted event of the same batch makes a member: a
        joiner's first events)."""
        vv = self.state.replica.vv
        candidates: list[tuple[str, SignedEvent]] = []
        for link, events in arrived:
            for event in events:
                body = event.body
                if body.seq <= vv.get(body.origin, 0):
                    if self.log.id_of(body.origin, body.seq) in (None, event.id):
                        self.copies += 1
                        continue
                elif (body.origin, body.seq) in self._invalid:
                    continue
                candidates.append((link.peer_id, event))
        forged = await self._forged([e for _, e in candidates])
        fresh: list[tuple[str, SignedEvent]] = []
        for peer_id, event in candidates:
            body = event.body
            if body.cluster != self.state.identity.cluster_id:
                self._reject("foreign_cluster", peer_id, "an event for another cluster")
            elif event.id in forged:
                self._reject("bad_signature", peer_id, f"an event claiming {body.origin[:12]}")
            elif not body.follows_its_origin:
                self._reject("invalid", peer_id, "an event whose vector is not at seq - 1")
            elif body.seq <= self.state.replica.vv.get(body.origin, 0):
                self._sequence_reused(body.origin, body.seq, event.id)
            else:
                fresh.append((peer_id, event))
        admitted = self._admit(fresh)
        self._hear_cut_reports(admitted)
        try:
            self.buffer.add(admitted, self.state.replica.vv)
        except BufferFull as exc:
            log.warning("closing links to catch up by cursor instead: %s", exc)
            for link, _ in arrived:
                link.close()
        for held, other in self.buffer.conflicts:
            self._sequence_reused(held.body.origin, held.body.seq, other.id)
        self.buffer.conflicts.clear()

    def _hear_cut_reports(self, events: list[SignedEvent]) -> None:
        """Cut reports count as soon as their event is authentic, before it applies: a
        report may causally follow the very events of the departed node that it lets in."""
        heard = self.state.replica.heard_cuts
        for event in events:
            for key, value in event.body.writes.items():
                if key.startswith("cut ") and isinstance(value, dict):
                    _, member, reporter = key.split(" ")
                    if reporter == event.body.origin and isinstance(value.get("seq"), int):
                        heard.setdefault(member, {})[reporter] = value["seq"]
                        self._recheck = True

    def _admit(self, events: list[tuple[str, SignedEvent]]) -> list[SignedEvent]:
        waiting = list(events)
        admitted: list[SignedEvent] = []
        progress = True
        while waiting and progress:
            progress = False
            for item in list(waiting):
                event = item[1]
                if self._known_origin(event.body.origin):
                    waiting.remove(item)
                    admitted.append(event)
                    self._announced.update(_members_written(event))
                    progress = True
        for peer_id, event in waiting:
            self._reject("unknown_origin", peer_id, f"an event from {event.body.origin[:12]}")
        return admitted

    def _sequence_reused(self, origin: str, seq: int, other: str) -> None:
        log.error(
            "ALARM: %s reused sequence number %d (event %s differs from the one applied "
            "or held here); it is not applied",
            origin[:12],
            seq,
            other[:12],
        )
        self.rejected["sequence_reused"] += 1

    async def _ingest_loop(self) -> None:
        """Everything that queued while the last batch applied goes in the next one: under
        load batches grow, and the fixed cost of a commit is shared by more events."""
        async for first in self._ingest_receive:
            arrived = [first]
            while True:
                try:
                    arrived.append(self._ingest_receive.receive_nowait())
                except trio.WouldBlock:
                    break
            await self._screen([(link, events) for link, events in arrived if link is not None])
            if self._recheck:
                self._recheck = False
                self.buffer.add(self._held, self.state.replica.vv)
                self._held = []
            await self._deliver()
            for link in {link for link, _ in arrived if link is not None}:
                self._request_gaps(link)

    async def _deliver(self) -> None:
        while ready := self.buffer.ready(self.state.replica.vv):
            chunks = list(whole_chunks(ready, APPLY_CHUNK))
            for index, chunk in enumerate(chunks):
                try:
                    await self.state.apply_remote(chunk)
                except EventError:
                    await self._deliver_one_by_one(chunk)
                    later = [e for rest in chunks[index + 1 :] for e in rest]
                    self.buffer.add(later, self.state.replica.vv)
                    break

    async def _deliver_one_by_one(self, events: list[SignedEvent]) -> None:
        """Find the refused unit; what follows it waits in the buffer again. A departed
        member's event that must wait for cut reports is held apart (see ``_recheck``)."""
        pieces = list(units(events))
        for index, unit in enumerate(pieces):
            try:
                await self.state.apply_remote(unit)
            except EventWaits:
                self._held.extend(unit)
                rest = [e for later in pieces[index + 1 :] for e in later]
                self.buffer.add(rest, self.state.replica.vv)
                return
            except EventError as exc:
                origin = unit[0].body.origin
                self._reject("invalid", origin, str(exc))
                await self.state.forget(unit)
                self._invalid.update((e.body.origin, e.body.seq) for e in unit)
                rest = [e for later in pieces[index + 1 :] for e in later]
                self.buffer.add(rest, self.state.replica.vv)
                return

    async def _on_snapshot(self, link: Link, message: Snapshot) -> None:
        reader = await self.snapshots.receive(link, message)
        if reader is None or reader.vv is None:
            return
        replica = self.state.replica
        if covers(replica.vv, reader.vv):
            log.info("a snapshot from %s brings nothing new; not installed", link.peer_id[:12])
            return
        try:
            replayed, pending = await self.state.install(reader.vv, reader.entries)
        except SnapshotError as exc:
            self.snapshots.refuse(link, exc, midway=False)
            return
        self.snapshots.installed()
        self.log.forget()
        self.buffer.prune(replica.vv)
        self._adopt_pending(pending)
        log.warning(
            "installed a snapshot from %s: %d keys; %d logged events it lacked applied again",
            link.peer_id[:12],
            len(reader.entries),
            replayed,
        )
        self._membership_changed.set()  # cut reports the snapshot's members may owe
        self._poke_ingest()  # events held for it may apply now

    def _adopt_pending(self, pending: list[SignedEvent]) -> None:
        """Deliver logged events that did not apply again after a snapshot (see
        ``NodeState.install``) like any received ones; local writes wait for this node's
        own among them."""
        self.buffer.add(pending, self.state.replica.vv)
        own = [e.body.seq for e in pending if e.body.origin == self.me]
        self._own_needed = max([self._own_needed, *own])
        self._check_writes()

    def _request_gaps(self, link: Link) -> None:
        for origin, after in self.buffer.gaps(self.state.replica.vv).items():
            if (origin, after + 1) not in self._invalid:
                link.request_pull(Pull(origin, after), self.timers.heartbeat_ms / 1000)

    # -- notifications -------------------------------------------------------------------

    def _on_applied(self, events: Sequence[SignedEvent]) -> None:
        self.log.remember(events)
        own = any(e.body.origin == self.me for e in events)
        for link in self.links.values():
            if own or link.ack_pending:
                link.wake()
        self._check_writes()
        if any(k.startswith(("member ", "cut ")) for e in events for k in e.body.writes):
            self._membership_changed.set()
            if self._held:  # a report or a member change may decide what was held
                self._recheck = True
                self._poke_ingest()

    def _poke_ingest(self) -> None:
        """Make the ingest loop deliver again; a full queue means it will anyway."""
        with contextlib.suppress(trio.WouldBlock):
            self._ingest_send.send_nowait((None, []))

    def _cut_reports(self, departed: list[str]) -> dict[str, JSONValue]:
        replica = self.state.replica
        return {cut_key(node_id, self.me): {"seq": replica.seen(node_id)} for node_id in departed}

    async def _report_cuts(self) -> None:
        """Write this node's cut report for every member that left or was removed and has
        none from this node yet (see ``protocol.membership``)."""
        replica = self.state.replica
        while True:
            await self._membership_changed.wait()
            self._membership_changed = trio.Event()
            if not replica.is_member(self.me):
                continue
            due = [
                node_id
                for node_id, value in replica.registers.objects("member")
                if value.get("status") in ("left", "removed")
                and replica.registers.get(cut_key(node_id, self.me)) is None
            ]
            if due:
                try:
                    await self.state.write("member.cut", partial(self._cut_reports, due))
                except WritesHeld as exc:
                    log.warning("cut reports wait: %s", exc)
                    self._membership_changed.set()
                    await trio.sleep(self.timers.write_hold_ms / 1000)

    def _acked(self) -> None:
        self._acks.set()
        self._acks = trio.Event()

    def _note_hello(self, hello: Hello) -> None:
        self._hello_seen = True
        self._own_needed = max(self._own_needed, hello.vv.get(self.me, 0))
        self._check_writes()

    def _check_writes(self) -> None:
        have = self.state.replica.vv.get(self.me, 0)
        if self._own_needed > have:
            if self._own_needed != self._reported_needed:
                self._reported_needed = self._own_needed
                log.error(
                    "this node's events up to %d exist (in a peer, or logged here and not "
                    "applied yet) but only %d are applied here; holding writes until they are",
                    self._own_needed,
                    have,
                )
            self.state.hold_writes()
        elif self.state.writes_held and (self._hello_seen or self._hold_expired):
            self.state.release_writes()

    async def wait_applied(self, origin: str, seq: int, nodes: int, timeout: float) -> int:
        """Wait until ``nodes`` nodes (this one included) applied (origin, seq)."""
        for link in self.links.values():
            if link.view.acked.get(origin, 0) < seq:
                link.request_ack()
        with trio.move_on_after(timeout):
            while (count := self.applied_count(origin, seq)) < nodes:
                await self._acks.wait()
            return count
        return self.applied_count(origin, seq)

    def applied_count(self, origin: str, seq: int) -> int:
        peers = sum(
            1
            for node_id, view in self.views.items()
            if view.acked.get(origin, 0) >= seq and self.state.replica.is_member(node_id)
        )
        return 1 + peers

    # -- status --------------------------------------------------------------------------

    def lag(self, peer_id: str, now_ms: int) -> dict[str, Any]:
        """Events this node has that the peer has not acknowledged, and the oldest's age."""
        view = self.views.get(peer_id, PeerView())
        events = 0
        oldest: int | None = None
        for origin, seq in self.state.replica.vv.items():
            acked = view.acked.get(origin, 0)
            if seq > acked:
                events += seq - acked
                hlc = self.log.hlc_of(origin, acked + 1)
                if hlc is not None and (oldest is None or hlc < oldest):
                    oldest = hlc
        seconds = 0.0 if oldest is None else max(0.0, (now_ms - hlc_physical_ms(oldest)) / 1000)
        return {"events": events, "seconds": round(seconds, 3)}


def _members_written(event: SignedEvent) -> Iterator[str]:
    for key, value in event.body.writes.items():
        if key.startswith("member ") and isinstance(value, dict):
            yield key[len("member ") :]
