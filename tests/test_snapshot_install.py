"""Installing a snapshot on one node, in process: what it replaces, which logged events
it does not cover apply again, which wait, and what it refuses."""

from collections.abc import Mapping
from pathlib import Path

import nacl.signing
import pytest
import trio

from node.bootstrap import initialise
from node.config import NodeConfig
from node.service import NodeState
from protocol.canonical import JSONValue
from protocol.events import EventBody, EventError, SignedEvent, node_id_of, sign_event
from protocol.membership import cut_key
from protocol.snapshot import SnapshotError
from protocol.statekeys import member_key, setting_key

Entries = dict[str, SignedEvent]


class Other:
    """A member whose events are signed here: another one, or this node itself writing
    events it no longer has (as before a restore from an older copy)."""

    def __init__(
        self, state: NodeState, key: nacl.signing.SigningKey | None = None, seq: int = 0
    ) -> None:
        self.state = state
        self.key = key or nacl.signing.SigningKey.generate()
        self.id = node_id_of(self.key.verify_key)
        self.seq = seq

    def event(self, writes: dict[str, JSONValue], vv: Mapping[str, int]) -> SignedEvent:
        self.seq += 1
        self.state.writer.last_hlc += 1
        body = EventBody(
            cluster=self.state.identity.cluster_id,
            origin=self.id,
            seq=self.seq,
            vv=dict(vv),
            hlc=self.state.writer.last_hlc,
            kind="test",
            writes=writes,
        )
        return sign_event(body, self.key)


def _member(status: str) -> dict[str, JSONValue]:
    return {"name": "other", "peer": "127.0.0.1:1", "status": status}


@pytest.fixture
def state(tmp_path: Path) -> NodeState:
    initialise(tmp_path / "n", NodeConfig(name="n1"), "test")
    return NodeState.open(tmp_path / "n")


def _snapshot(state: NodeState) -> tuple[dict[str, int], Entries]:
    """This node's state as a snapshot would carry it."""
    found, damaged = state.replica.sources([k for k, _ in state.replica.registers.items()])
    assert not damaged
    return dict(state.replica.vv), found


def _install(state: NodeState, vv: Mapping[str, int], entries: Entries) -> tuple[int, list[str]]:
    replayed, pending = trio.run(state.install, vv, entries)
    return replayed, [f"{e.body.origin[:4]}:{e.body.seq}" for e in pending]


def _value(state: NodeState, name: str) -> JSONValue:
    return state.replica.registers.value(setting_key(name))


def _with_departed(state: NodeState) -> tuple[Other, Other]:
    """Members B and D, and one event of D's applied here."""
    b, d = Other(state), Other(state)
    state.write_now("member.add", {member_key(b.id): _member("active")})
    state.write_now("member.add", {member_key(d.id): _member("active")})
    state.replica.apply([d.event({setting_key("d1"): {"value": 1}}, state.replica.vv)])
    return b, d


def _add(author: Other, writes: dict[str, JSONValue], vv: dict[str, int], entries: Entries) -> None:
    """Add to a snapshot an event of ``author``'s."""
    event = author.event(writes, vv)
    entries |= dict.fromkeys(writes, event)
    vv[author.id] = event.body.seq


def _removal(b: Other, d: Other, vv: dict[str, int], entries: Entries) -> None:
    """Add to a snapshot B's removal of D, with B's report that it had seen D's first."""
    _add(b, {member_key(d.id): _member("removed"), cut_key(d.id, b.id): {"seq": 1}}, vv, entries)


def _own_report(state: NodeState, d: Other, vv: dict[str, int], entries: Entries) -> None:
    """Add to a snapshot this node's report that it had seen D's first event, written
    before it lost it (restored from an older copy, say)."""
    me = Other(state, state.writer.key, vv[state.identity.node_id])
    _add(me, {cut_key(d.id, me.id): {"seq": 1}}, vv, entries)


def test_own_writes_the_snapshot_lacks_are_applied_again(state: NodeState) -> None:
    vv, entries = _snapshot(state)
    (mine,) = state.write_now("setting.put", {setting_key("late"): {"value": 7}})
    root = state.replica.registers.merkle.root()
    assert _install(state, vv, entries) == (1, [])
    assert state.replica.vv[state.identity.node_id] == mine.body.seq
    assert _value(state, "late") == {"value": 7}
    assert state.replica.registers.merkle.root() == root
    assert not state.writes_held


def test_a_departed_members_events_only_this_node_has_still_apply(state: NodeState) -> None:
    """B removed D, having seen one of D's events; this node applied D's second and then
    wrote, but has not reported. Its report will count D's second event, so that event
    and this node's own write after it apply again, and are not lost."""
    b, d = _with_departed(state)
    vv, entries = _snapshot(state)
    _removal(b, d, vv, entries)
    state.replica.apply([d.event({setting_key("d2"): {"value": 2}}, state.replica.vv)])
    state.write_now("setting.put", {setting_key("after"): {"value": 3}})
    assert _install(state, vv, entries) == (2, [])
    assert state.replica.membership(d.id) == "removed"
    assert _value(state, "d2") == {"value": 2} and _value(state, "after") == {"value": 3}
    assert state.replica.seen(d.id) == 2
    assert not state.writes_held


def test_a_departed_members_event_past_the_cut_stays_pending_until_refused(
    state: NodeState,
) -> None:
    """Every member reported 1 (this node too, before it was restored, say): D's second
    event here does not apply again; it is refused when delivered, then dropped."""
    b, d = _with_departed(state)
    vv, entries = _snapshot(state)
    _removal(b, d, vv, entries)
    _own_report(state, d, vv, entries)
    d2 = d.event({setting_key("d2"): {"value": 2}}, state.replica.vv)
    state.replica.apply([d2])
    replayed, pending = _install(state, vv, entries)
    assert (replayed, pending) == (0, [f"{d.id[:4]}:2"])
    assert _value(state, "d2") is None
    with pytest.raises(EventError, match="past its cut"):
        state.replica.apply([d2])
    state.replica.forget([d2])
    assert state.replica.pending() == []


def test_own_events_that_cannot_apply_yet_hold_writes(state: NodeState) -> None:
    """An own logged event the snapshot lacks whose causal past is not here either stays
    logged, and local writes wait: a new one would take its sequence number."""
    c = Other(state)
    state.write_now("member.add", {member_key(c.id): _member("active")})
    vv, entries = _snapshot(state)
    c1 = c.event({setting_key("c1"): {"value": 1}}, state.replica.vv)
    state.replica.apply([c1])
    (mine,) = state.write_now("setting.put", {setting_key("mine"): {"value": 2}})
    with state.db.db.conn as conn:
        conn.execute("DELETE FROM events WHERE id = ?", [c1.id])
    assert _install(state, vv, entries) == (0, [f"{state.identity.node_id[:4]}:{mine.body.seq}"])
    assert state.writes_held
    assert [e.id for e in state.replica.pending()] == [mine.id]
    assert state.replica.vv[state.identity.node_id] == mine.body.seq - 1


def test_a_snapshot_with_an_event_past_a_departed_members_cut_is_refused(
    state: NodeState,
) -> None:
    b, d = _with_departed(state)
    d2 = d.event({setting_key("d2"): {"value": 2}}, state.replica.vv)
    state.replica.apply([d2])
    vv, entries = _snapshot(state)
    _removal(b, d, vv, entries)
    _own_report(state, d, vv, entries)
    before = (dict(state.replica.vv), state.replica.registers.merkle.root())
    with pytest.raises(SnapshotError, match="past its cut"):
        _install(state, vv, entries)
    assert (dict(state.replica.vv), state.replica.registers.merkle.root()) == before
