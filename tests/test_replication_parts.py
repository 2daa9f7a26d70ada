"""The pieces of peer links that need no network: TLS contexts over a memory stream,
message batching, the event log reader, gaps and whole-group chunks, event sizes, repair
rounds across a replaced link."""

from __future__ import annotations

import itertools
import sqlite3
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import nacl.signing
import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives import serialization

from node.bootstrap import initialise
from node.config import NodeConfig
from node.identity import ClusterCA, IdentityFiles
from node.replication.delivery import CausalBuffer, units, whole_chunks
from node.replication.eventlog import EventLog
from node.replication.link import (
    RELAY_ROUNDS_KEPT,
    SNAPSHOT_AFTER_ROUNDS,
    SNAPSHOT_BACKOFF_CAP,
    Link,
    PeerView,
    RelayWindow,
    SnapshotPacing,
)
from node.replication.peering import Peering
from node.replication.tls import (
    PeerCertificateError,
    check_issued_by,
    join_client_context,
    member_client_context,
    node_id_of_certificate,
    server_context,
)
from node.replication.wire import MAX_EVENT_BYTES_PER_MESSAGE, MessageStream, event_batches
from node.service import DB_FILE, NodeState
from node.writer import MAX_WRITE_BYTES_PER_EVENT, MAX_WRITES_PER_EVENT
from protocol.events import EventBody, Group, SignedEvent, node_id_of, sign_event
from protocol.peer import (
    MAX_EVENTS_PER_MESSAGE,
    Descend,
    Events,
    Fetch,
    Message,
    Nodes,
    Ping,
    Pong,
    Repair,
    Root,
    TreeNode,
)
from protocol.repair import describe
from protocol.statekeys import setting_key

KEY = nacl.signing.SigningKey(b"\x07" * 32)
PEER = "f" * 64  # the node id of a peer that a test plays
ME = node_id_of(KEY.verify_key)


def _event(seq: int, group: Group | None = None, size: int = 10) -> SignedEvent:
    body = EventBody(
        "c", ME, seq, {}, seq << 16, "test", {setting_key("k"): {"value": "x" * size}}, group
    )
    return sign_event(body, KEY)


def _state(tmp_path: Path) -> NodeState:
    initialise(tmp_path / "n", NodeConfig(name="n1"), "t")
    return NodeState.open(tmp_path / "n")


def _sync_inline(state: NodeState) -> Callable[[], Awaitable[None]]:
    async def sync() -> None:
        state.replica.db.sync()

    return sync


async def _ignore(*args: object) -> None:
    return None


def _link_to_test(
    state: NodeState,
    peering: Peering,
    acked: dict[str, int],
    durable: Callable[[], Awaitable[None]],
) -> tuple[Link, MessageStream]:
    """A real ``Link`` from this node to a peer that the test plays, on a memory stream;
    run it with ``link.run(_ignore, lambda: None, _ignore, _ignore, heartbeat, dead_after)``."""
    near, far = trio.testing.memory_stream_pair()
    link = Link(
        PEER,
        MessageStream(near),
        PeerView(acked=dict(acked)),
        PEER,
        state.identity.node_id,
        state.replica.vv,
        peering.log,
        peering.snapshots,
        state.replica.compacted,
        durable,
    )
    return link, MessageStream(far)


def _member(tmp_path: Path, name: str, ca: ClusterCA) -> tuple[IdentityFiles, str]:
    key = nacl.signing.SigningKey.generate()
    files = IdentityFiles(tmp_path / name)
    files.data_dir.mkdir()
    pem = ca.issue(key.verify_key).public_bytes(serialization.Encoding.PEM).decode()
    files.write(key, ca, pem)
    return files, node_id_of(key.verify_key)


async def _handshake(
    client: ssl.SSLContext, server: ssl.SSLContext
) -> tuple[bytes | None, bytes | None]:
    """Both sides' view of the other's certificate after a real TLS 1.3 handshake."""
    left, right = trio.testing.memory_stream_pair()
    client_side = trio.SSLStream(left, client, server_hostname=None)
    server_side = trio.SSLStream(right, server, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_side.do_handshake)
        nursery.start_soon(server_side.do_handshake)
    assert client_side.version() == "TLSv1.3"
    return (
        client_side.getpeercert(binary_form=True),
        server_side.getpeercert(binary_form=True),
    )


async def test_member_tls_names_both_ends_by_key(tmp_path: Path) -> None:
    ca = ClusterCA.create("t")
    (a, a_id), (b, b_id) = _member(tmp_path, "a", ca), _member(tmp_path, "b", ca)
    seen_by_client, seen_by_server = await _handshake(member_client_context(a), server_context(b))
    assert seen_by_client is not None and node_id_of_certificate(seen_by_client) == b_id
    assert seen_by_server is not None and node_id_of_certificate(seen_by_server) == a_id


async def test_a_joiner_has_no_certificate_and_checks_the_leaf_itself(tmp_path: Path) -> None:
    ca, other_ca = ClusterCA.create("t"), ClusterCA.create("evil")
    server, _ = _member(tmp_path, "s", ca)
    leaf, seen_by_server = await _handshake(join_client_context(), server_context(server))
    assert seen_by_server is None and leaf is not None
    check_issued_by(leaf, ca.cert)
    with pytest.raises(PeerCertificateError, match="not signed by the pinned CA"):
        check_issued_by(leaf, other_ca.cert)


async def test_a_certificate_from_another_ca_fails_the_handshake(tmp_path: Path) -> None:
    client, _ = _member(tmp_path, "a", ClusterCA.create("one"))
    server, _ = _member(tmp_path, "b", ClusterCA.create("two"))
    with pytest.RaisesGroup(trio.BrokenResourceError, allow_unwrapped=True, flatten_subgroups=True):
        await _handshake(member_client_context(client), server_context(server))


async def test_messages_travel_in_one_batch() -> None:
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = MessageStream(left), MessageStream(right)
    await sender.send([Ping({ME: 1}), Pong({})])
    assert await receiver.receive() == Ping({ME: 1})
    assert await receiver.receive() == Pong({})
    assert sender.bytes_out == receiver.bytes_in > 0


def test_event_batches_respect_count_and_size() -> None:
    small = [_event(i) for i in range(1, MAX_EVENTS_PER_MESSAGE + 2)]
    assert [len(b.events) for b in event_batches(small)] == [MAX_EVENTS_PER_MESSAGE, 1]
    big = [_event(i, size=MAX_EVENT_BYTES_PER_MESSAGE // 3) for i in range(1, 5)]
    assert [len(b.events) for b in event_batches(big)] == [2, 2]


def test_event_log_reads_recent_events_from_memory_and_older_ones_from_sqlite(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path)
    for value in range(5):
        state.write_now("test", {setting_key("k"): {"value": value}})
    me = state.identity.node_id
    log = EventLog(tmp_path / "n" / DB_FILE, keep=2)
    try:
        from_disk = log.after(me, 0, 6, 100, 1 << 20)
        assert [e.body.seq for e in from_disk] == [1, 2, 3, 4, 5, 6]
        log.remember(from_disk[-2:])
        assert [e.body.seq for e in log.after(me, 4, 6, 100, 1 << 20)] == [5, 6]
        assert log.after(me, 6, 6, 100, 1 << 20) == []
        assert [e.body.seq for e in log.after(me, 1, 6, 2, 1 << 20)] == [2, 3]
        assert [e.body.seq for e in log.after(me, 0, 6, 100, 1)] == [1]  # one, even if larger
        assert [e.body.seq for e in log.after(me, 0, 4, 100, 1 << 20)] == [1, 2, 3, 4]
        assert log.hlc_of(me, 3) == from_disk[2].body.hlc and log.hlc_of(me, 99) is None
    finally:
        log.close()
        state.close()


def test_gaps_are_origins_whose_next_event_never_came() -> None:
    buffer = CausalBuffer()
    buffer.add([_event(3), _event(4)], {ME: 1})
    assert buffer.gaps({ME: 1}) == {ME: 1}
    buffer.add([_event(2)], {ME: 1})
    assert buffer.gaps({ME: 1}) == {}


def test_chunks_never_split_a_group() -> None:
    events = [_event(1), *(_event(i, Group("g", i - 1, 3)) for i in (2, 3, 4)), _event(5)]
    assert [len(u) for u in units(events)] == [1, 3, 1]
    assert [len(c) for c in whole_chunks(events, 2)] == [4, 1]


def test_large_writes_are_split_into_events_within_the_size_limit(tmp_path: Path) -> None:
    state = _state(tmp_path)
    try:
        bulky = {setting_key(f"k{i}"): {"value": "x" * 60_000} for i in range(150)}
        events = state.writer.build("test", bulky)
        assert len(events) > 1 and all(e.body.group is not None for e in events)
        assert all(len(e.body_bytes) < MAX_WRITE_BYTES_PER_EVENT + 70_000 for e in events)
        many = {setting_key(f"m{i}"): {"value": i} for i in range(MAX_WRITES_PER_EVENT + 1)}
        assert [len(e.body.writes) for e in state.writer.build("test", many)] == [
            MAX_WRITES_PER_EVENT,
            1,
        ]
    finally:
        state.close()


async def test_a_refused_event_holds_back_only_its_own_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events are applied in chunks; one refused event must not make the chunks after it
    (other origins' events among them) look refused too."""
    from node.replication import peering as peering_module
    from protocol.statekeys import member_key

    monkeypatch.setattr(peering_module, "APPLY_CHUNK", 1)
    state = _state(tmp_path)
    # the refused event's origin sorts first, so its chunk comes before the others'
    keys = sorted(
        (nacl.signing.SigningKey.generate() for _ in range(2)),
        key=lambda k: node_id_of(k.verify_key),
    )
    ids = [node_id_of(k.verify_key) for k in keys]
    state.write_now(
        "test", {member_key(i): {"name": i[:4], "peer": "", "status": "active"} for i in ids}
    )
    base = dict(state.replica.vv)
    cluster = state.identity.cluster_id

    def event(key: nacl.signing.SigningKey, seq: int, writes: dict[str, object]) -> SignedEvent:
        past = {**base, node_id_of(key.verify_key): seq - 1}
        body = EventBody(cluster, node_id_of(key.verify_key), seq, past, seq << 16, "t", writes)  # type: ignore[arg-type]
        return sign_event(body, key)

    bad = event(keys[0], 1, {setting_key("x"): "not an object"})
    after_bad = event(keys[0], 2, {setting_key("y"): {"value": 1}})
    others = [event(keys[1], seq, {setting_key(f"z{seq}"): {"value": seq}}) for seq in (1, 2, 3)]
    peering = peering_module.Peering(state)
    try:
        peering.buffer.add([bad, after_bad, *others], state.replica.vv)
        await peering._deliver()
        assert state.replica.vv.get(ids[1]) == 3  # every event of the other origin applied
        assert ids[0] not in state.replica.vv
        assert peering.rejected == {"invalid": 1}
        assert len(peering.buffer) == 1  # the event after the refused one waits
    finally:
        peering.log.close()
        state.close()


class _LinkEnd:
    """The side of a link a ``Repairer`` talks to: it only queues messages."""

    def __init__(self, peer_id: str, me: str) -> None:
        self.peer_id = peer_id
        self.me = me
        self.sent: list[Message] = []

    def send_soon(self, messages: list[Message]) -> None:
        self.sent.extend(messages)


async def test_a_replaced_link_drops_its_repair_round_and_what_still_arrives_on_it(
    tmp_path: Path,
) -> None:
    """Both nodes dial at once after a restart: the second link replaces the first. A round
    open on the first can never be answered, so the new link must be free to run its own,
    and what still arrives on the old one (a ROOT, a late NODES) must neither open a round
    there, which would never end, nor touch the new link's round."""

    state = _state(tmp_path)
    peering = Peering(state)
    try:
        repair, peer = peering.repair, PEER
        tree = state.replica.registers.merkle
        offered = Root("0" * 64, dict(state.replica.vv))  # a root that differs from ours

        def rounds(link: _LinkEnd) -> list[int]:
            return [m.round for m in link.sent if isinstance(m, Descend)]

        old, new = _LinkEnd(peer, state.identity.node_id), _LinkEnd(peer, state.identity.node_id)
        repair.link_up(old)  # type: ignore[arg-type]
        await repair.handle(old, offered)  # type: ignore[arg-type]
        assert len(rounds(old)) == 1
        repair.link_up(new)  # type: ignore[arg-type]
        await repair.handle(old, offered)  # type: ignore[arg-type]
        await repair.handle(old, Nodes(rounds(old)[0], {"": describe(tree, "")}))  # type: ignore[arg-type]
        assert len(old.sent) == 1  # nothing more happened on the old link
        await repair.handle(new, offered)  # type: ignore[arg-type]
        await repair.handle(new, offered)  # type: ignore[arg-type]
        assert len(rounds(new)) == 1 and rounds(new) != rounds(old)  # one round, a new one
        await repair.handle(new, Nodes(rounds(new)[0], {"": describe(tree, "")}))  # type: ignore[arg-type]
        assert repair.stats[peer].rounds == 1  # the new round ended: equal trees
    finally:
        peering.log.close()
        state.close()


async def test_a_handler_that_waited_on_a_replaced_link_ends_no_other_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's handler can wait on a commit (``_own``). If its link is replaced
    meanwhile and the new link's round is itself between a NODES and its FETCH (no request
    open), the old handler must not end that round when it wakes."""

    state = _state(tmp_path)
    peering = Peering(state)
    repair, peer = peering.repair, PEER
    tree = state.replica.registers.merkle
    offered = Root("0" * 64, dict(state.replica.vv))
    old, new = _LinkEnd(peer, state.identity.node_id), _LinkEnd(peer, state.identity.node_id)
    gates = {id(old): trio.Event(), id(new): trio.Event()}
    own = repair._own

    async def gated_own(
        link: _LinkEnd, keys: set[str], keep: frozenset[str] = frozenset()
    ) -> object:
        await gates[id(link)].wait()
        return await own(link, keys, keep)  # type: ignore[arg-type]

    monkeypatch.setattr(repair, "_own", gated_own)

    def last_round(link: _LinkEnd) -> int:
        return [m.round for m in link.sent if isinstance(m, Descend)][-1]

    # the peer holds a key this node lacks: its round must FETCH after the wait
    theirs = {"": TreeNode(None, {setting_key("x"): "0" * 32})}
    try:
        async with trio.open_nursery() as nursery:
            repair.link_up(old)  # type: ignore[arg-type]
            await repair.handle(old, offered)  # type: ignore[arg-type]
            nursery.start_soon(repair.handle, old, Nodes(last_round(old), {"": describe(tree, "")}))
            await trio.testing.wait_all_tasks_blocked()
            repair.link_up(new)  # type: ignore[arg-type]
            await repair.handle(new, offered)  # type: ignore[arg-type]
            nursery.start_soon(repair.handle, new, Nodes(last_round(new), theirs))
            await trio.testing.wait_all_tasks_blocked()
            gates[id(old)].set()  # the old handler wakes while the new round waits
            await trio.testing.wait_all_tasks_blocked()
            assert peer not in repair.stats or repair.stats[peer].rounds == 0
            gates[id(new)].set()
        assert [type(m) for m in new.sent][-1] is Fetch  # the new round asks, then ends
        await repair.handle(new, Repair(last_round(new), True, [], []))  # type: ignore[arg-type]
        assert repair.stats[peer].rounds == 1 and repair.stats[peer].last_differences > 0
    finally:
        peering.log.close()
        state.close()


def _sends(pacing: SnapshotPacing, behind: list[bool]) -> list[int]:
    """The rounds (from 1) at which a snapshot goes out."""
    return [n for n, b in enumerate(behind, start=1) if pacing.send_now(b)]


def test_snapshots_wait_longer_for_higher_ranks_and_back_off_while_the_peer_stays_behind() -> None:
    first = SNAPSHOT_AFTER_ROUNDS + 1
    assert _sends(SnapshotPacing(0), [True] * first) == [first]
    assert _sends(SnapshotPacing(2), [True] * (first + 2)) == [first + 2]
    sends = _sends(SnapshotPacing(0), [True] * 400)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sends)]
    waits = [min(SNAPSHOT_AFTER_ROUNDS << k, SNAPSHOT_BACKOFF_CAP) for k in range(1, 20)]
    assert sends[0] == first
    assert gaps == [wait + 1 for wait in waits[: len(gaps)]]
    assert gaps[-1] == SNAPSHOT_BACKOFF_CAP + 1


def test_snapshot_pacing_starts_over_once_the_peer_caught_up() -> None:
    pacing = SnapshotPacing(0)
    first = SNAPSHOT_AFTER_ROUNDS + 1
    assert _sends(pacing, [True] * first) == [first]
    assert _sends(pacing, [True] * first) == []  # backing off
    assert _sends(pacing, [False, *[True] * first]) == [first + 1]


def test_the_first_full_round_relays_what_the_node_had_when_the_link_came_up() -> None:
    window = RelayWindow({"a": 5, "b": 2}, now=10.0)
    assert window.full_round(10.0, {"a": 7, "b": 2}, grace=1.0) == {"a": 5, "b": 2}


def test_an_event_is_relayed_only_when_a_report_a_grace_later_still_lacks_it() -> None:
    window = RelayWindow({}, now=0.0)
    window.full_round(0.0, {"a": 1}, grace=1.0)
    window.full_round(1.0, {"a": 2}, grace=1.0)
    window.reported(1.5)  # made within the grace after the node had a=2
    assert window.full_round(2.0, {"a": 3}, grace=1.0) == {"a": 1}
    window.reported(2.2)
    assert window.full_round(3.0, {"a": 4}, grace=1.0) == {"a": 2}
    window.reported(4.5)
    assert window.full_round(5.0, {"a": 6}, grace=1.0) == {"a": 4}


def test_late_reports_relay_nothing_more_and_memory_stays_bounded() -> None:
    window = RelayWindow({"a": 1}, now=0.0)
    window.reported(0.5)
    relayed = [window.full_round(float(t), {"a": t + 1}, grace=1.0) for t in range(1, 200)]
    assert all(upto == {"a": 1} for upto in relayed)
    assert len(window._rounds) <= RELAY_ROUNDS_KEPT
    window.reported(300.0)  # a report at last: everything up to the newest round kept
    assert window.full_round(301.0, {"a": 500}, grace=1.0) == {"a": 200}


def test_a_report_exactly_a_grace_after_a_round_relays_that_round() -> None:
    window = RelayWindow({}, now=0.0)
    window.full_round(1.0, {"a": 1}, grace=1.0)
    window.reported(1.999)
    assert window.full_round(2.0, {"a": 2}, grace=1.0) == {}
    window.reported(2.0)
    assert window.full_round(3.0, {"a": 3}, grace=1.0) == {"a": 1}


def _third_origins_event(state: NodeState, *, own_entry: int = 0) -> SignedEvent:
    """The first event of a new member, signed by it: neither this node's nor its peer's.
    ``own_entry`` is what its vector says of its origin (0, absent, is right)."""
    from protocol.statekeys import member_key

    third = nacl.signing.SigningKey.generate()
    origin = node_id_of(third.verify_key)
    state.write_now("test", {member_key(origin): {"name": "z", "peer": "", "status": "active"}})
    vv = dict(state.replica.vv)
    if own_entry:
        vv[origin] = own_entry
    body = EventBody(
        state.identity.cluster_id, origin, 1, vv, 1 << 16, "t", {setting_key("z"): {"value": 1}}
    )
    return sign_event(body, third)


async def test_an_event_whose_vector_misstates_its_own_origin_is_refused(
    tmp_path: Path,
) -> None:
    """An event's vector holds its origin at seq - 1. One that claims its own origin at seq
    or beyond could never be delivered (its causal past includes itself): held, it would
    block every later event of its origin. It is refused at once and counted."""
    state = _state(tmp_path)
    peering = Peering(state)
    link = _LinkEnd(PEER, state.identity.node_id)
    try:
        await peering._screen([(link, [_third_origins_event(state, own_entry=1)])])  # type: ignore[list-item]
        assert peering.rejected == {"invalid": 1} and len(peering.buffer) == 0
        await peering._screen([(link, [_third_origins_event(state)])])  # type: ignore[list-item]
        assert peering.rejected == {"invalid": 1} and len(peering.buffer) == 1
    finally:
        peering.log.close()
        state.close()


async def test_copies_of_applied_events_are_dropped_and_counted(tmp_path: Path) -> None:
    from node.api.metrics import ApiCounters, MetricsSources, metrics_text

    state = _state(tmp_path)
    event = _third_origins_event(state)
    peering = Peering(state)
    link = _LinkEnd(PEER, state.identity.node_id)
    try:
        await peering._screen([(link, [event])])  # type: ignore[list-item]
        assert peering.copies == 0 and len(peering.buffer) == 1
        await peering._deliver()
        await peering._screen([(link, [event, event])])  # type: ignore[list-item]
        assert peering.copies == 2 and len(peering.buffer) == 0 and not peering.rejected
        text, _ = metrics_text(MetricsSources(state, peering=peering), ApiCounters())
        assert b"\npeer53_events_copies_total 2.0\n" in text
    finally:
        peering.log.close()
        state.close()


async def test_a_link_relays_another_origins_event_only_after_a_late_enough_report(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """On a real ``Link`` (a memory stream, the test as the peer; heartbeat 1 s): an event
    of a third origin applied here at t=0.5 is first noted by the full round at t=1. A
    report read at t=1.5 is too early to relay it; one read at t=2.5 lets the full round
    at t=3 send it. Quick rounds never relay it."""

    state = _state(tmp_path)
    relayed = _third_origins_event(state)
    peering = Peering(state)
    hello_vv = dict(state.replica.vv)  # the peer has everything this node has at link-up
    # A worker thread's sync would let the mock clock jump past rounds.
    link, peer_end = _link_to_test(state, peering, hello_vv, _sync_inline(state))
    arrivals: list[float] = []
    start = trio.current_time()

    async def peer() -> None:
        while True:
            message = await peer_end.receive()
            if isinstance(message, Events) and relayed.id in [e.id for e in message.events]:
                arrivals.append(trio.current_time() - start)

    async def reports() -> None:
        await trio.sleep_until(start + 0.5)
        await state.apply_remote([relayed])
        peering.log.remember([relayed])
        for at in (1.5, 2.5):
            await trio.sleep_until(start + at)
            await peer_end.send([Pong(hello_vv)])

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run, _ignore, lambda: None, _ignore, _ignore, 1.0, 30.0)
            nursery.start_soon(peer)
            nursery.start_soon(reports)
            await trio.sleep_until(start + 5.5)
            nursery.cancel_scope.cancel()
    finally:
        peering.log.close()
        state.close()
    assert len(arrivals) == 1 and 3.0 <= arrivals[0] < 3.5, arrivals


async def test_events_from_peers_skip_the_fsync_but_no_vector_is_reported_before_it(
    tmp_path: Path,
) -> None:
    """A local write is on disk when it returns. A peer's event is committed without the
    fsync; a PONG reporting it is sent only after a sync covers it."""

    state = _state(tmp_path)
    db = state.replica.db
    await state.write("test", lambda: {setting_key("own"): {"value": 1}}, inline=True)
    assert db.synced == db.commits > 0
    event = _third_origins_event(state)
    peering = Peering(state)
    link, peer_end = _link_to_test(state, peering, {}, state.durable)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run, _ignore, lambda: None, _ignore, _ignore, 60.0, 120.0)
            with trio.fail_after(10):
                while not isinstance(await peer_end.receive(), Pong):  # the first full round
                    pass
                await state.apply_remote([event])
                applied = db.commits
                assert db.synced < applied  # no fsync for it yet
                assert db.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
                db.set_meta({"test": "x"})  # any other write gets FULL (2) again
                assert db.db.execute("PRAGMA synchronous").fetchone()[0] == 2
                await state.apply_remote([_third_origins_event(state)])
                applied = db.commits
                assert db.synced < applied
                await peer_end.send([Ping({})])
                while not isinstance(reply := await peer_end.receive(), Pong):
                    pass
            assert reply.vv[event.body.origin] == 1
            assert db.synced >= applied  # synced before the PONG went out
            nursery.cancel_scope.cancel()
    finally:
        peering.log.close()
        state.close()


async def test_a_sync_neither_waits_for_the_write_lock_nor_trusts_a_restart(
    tmp_path: Path,
) -> None:
    """Heartbeats must go on while a large import holds the write lock for long; and a node
    killed after committing peers' events without an fsync finds them, unsynced, in the
    OS's cache when it starts again."""
    state = _state(tmp_path)
    await state.apply_remote([_third_origins_event(state)])
    db = state.replica.db
    assert db.synced < db.commits
    release = trio.Event()

    async def importing(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with state.lock:
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(importing)
        with trio.fail_after(5):
            await state.durable()
        release.set()
    assert db.synced == db.commits
    state.close()
    again = NodeState.open(tmp_path / "n")
    try:
        assert again.replica.db.synced < again.replica.db.commits
        await again.durable()
        assert again.replica.db.synced == again.replica.db.commits
    finally:
        again.close()


def test_the_sync_reaches_the_wal_sqlite_writes_even_through_a_symlink(tmp_path: Path) -> None:
    """SQLite resolves a symbolic link to the database and keeps its WAL beside the target;
    a sync of a path beside the link would reach nothing."""
    from node.store.database import Database

    (tmp_path / "disk").mkdir()
    (tmp_path / "peer53.db").symlink_to(tmp_path / "disk" / "peer53.db")
    db = Database(tmp_path / "peer53.db")
    try:
        db.set_meta({"k": "v"})
        assert Path(db.wal_path) == tmp_path / "disk" / "peer53.db-wal"
        assert Path(db.wal_path).stat().st_size > 0
        db.sync()
    finally:
        db.close()


async def test_a_failed_sync_is_never_retried_into_a_promise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux reports a write-back error once: after one failed fsync, a later one that
    succeeds proves nothing, so no vector is reported again until a restart."""
    from node.store.database import StorageFailed

    state = _state(tmp_path)
    await state.apply_remote([_third_origins_event(state)])
    db = state.replica.db
    unsynced = db.synced

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    try:
        with monkeypatch.context() as patched:
            patched.setattr("os.fsync", failing)
            with pytest.raises(StorageFailed):
                await state.durable()
        with pytest.raises(StorageFailed):  # fsync works again, and still nothing is promised
            await state.durable()
        assert db.synced == unsynced < db.commits
    finally:
        state.close()


def test_commits_leave_the_wal_for_the_checkpointer(tmp_path: Path) -> None:
    """A commit that fills the WAL does not copy it into the database file itself (that
    held the event loop for milliseconds); the checkpoint, run from a worker thread,
    copies all of it."""
    from node.store.database import Database

    db = Database(tmp_path / "peer53.db")
    try:
        for index in range(60):  # about 1,500 WAL pages: SQLite's own limit is 1,000
            db.set_meta({"k": str(index) * 100_000})
        before = (tmp_path / "peer53.db").stat().st_size
        frames, copied = db.checkpoint()
        assert copied == frames >= 1_000
        assert before < (tmp_path / "peer53.db").stat().st_size
        assert db.meta("k") == "59" * 100_000
    finally:
        db.close()


async def test_the_node_checkpoints_only_after_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = 0.01
    monkeypatch.setattr("node.service.CHECKPOINT_EVERY", every)
    state = _state(tmp_path)
    db = state.replica.db
    copied: list[int] = []
    checkpoint = db.checkpoint
    monkeypatch.setattr(db, "checkpoint", lambda: copied.append(checkpoint()[1]))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(state.checkpoints)
            await trio.sleep(10 * every)
            assert copied == []  # nothing committed since it started
            await state.apply_remote([_third_origins_event(state)])
            with trio.fail_after(10):
                while not copied:
                    await trio.sleep(every)
            await trio.sleep(10 * every)
            assert len(copied) == 1 and copied[0] > 0
            nursery.cancel_scope.cancel()
    finally:
        state.close()


@pytest.mark.parametrize(("code", "fails_syncs"), [(sqlite3.SQLITE_BUSY, False), (1034, True)])
def test_a_checkpoint_that_fails_on_io_counts_as_a_failed_sync(
    tmp_path: Path, code: int, fails_syncs: bool
) -> None:
    """1034 is SQLITE_IOERR_FSYNC: the checkpoint's own fsync failed, and the kernel may
    have dropped what it could not write. A busy database is only tried again later."""
    from node.store.database import Database, StorageFailed

    class Failing:
        def execute(self, sql: str) -> sqlite3.Cursor:
            error = sqlite3.OperationalError("checkpoint failed")
            error.sqlite_errorcode = code
            raise error

        def close(self) -> None:
            pass

    db = Database(tmp_path / "peer53.db")
    try:
        db.set_meta({"k": "v"})
        db._checkpointer = Failing()  # type: ignore[assignment]
        assert db.checkpoint() == (0, 0)
        if fails_syncs:
            with pytest.raises(StorageFailed):
                db.sync()
        else:
            db.sync()
    finally:
        db.close()
