"""The one function that checks and applies events, fed events a bad peer could send."""

import dataclasses
import shutil
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import nacl.signing
import pytest

from node.bootstrap import initialise
from node.config import NodeConfig
from node.registers import Register
from node.service import NodeState
from node.zones.index import Zone
from protocol.events import EventBody, EventError, Group, SignedEvent, node_id_of, sign_event
from protocol.statekeys import StateKeyError, check_write, zone_key

ZONE_VALUE = {"gen": 0, "live": True, "ttl": 60}


@pytest.fixture
def state(tmp_path: Path) -> NodeState:
    initialise(tmp_path / "n", NodeConfig(name="n1"), "test")
    return NodeState.open(tmp_path / "n")


def _event(
    state: NodeState, key: nacl.signing.SigningKey | None = None, **over: object
) -> SignedEvent:
    key = key or state.writer.key
    origin = node_id_of(key.verify_key)
    fields: dict[str, object] = {
        "cluster": state.identity.cluster_id,
        "origin": origin,
        "seq": state.replica.vv.get(origin, 0) + 1,
        "vv": dict(state.replica.vv),
        "hlc": state.writer.last_hlc + 1,
        "kind": "test",
        "writes": {zone_key("x.test."): ZONE_VALUE},
    }
    fields.update(over)
    return sign_event(EventBody(**fields), key)  # type: ignore[arg-type]


def _refused(state: NodeState, events: list[SignedEvent], match: str) -> None:
    before = (dict(state.replica.vv), state.replica.registers.merkle.root())
    with pytest.raises(EventError, match=match):
        state.replica.apply(events)
    assert (dict(state.replica.vv), state.replica.registers.merkle.root()) == before
    assert state.db.version_vector() == before[0]


def test_event_from_a_non_member_is_refused(state: NodeState) -> None:
    _refused(state, [_event(state, nacl.signing.SigningKey.generate())], "not an active member")


def test_event_for_another_cluster_is_refused(state: NodeState) -> None:
    _refused(state, [_event(state, cluster="other")], "another cluster")


def test_sequence_gap_is_refused(state: NodeState) -> None:
    _refused(state, [_event(state, seq=5)], "expected 2")


def test_an_event_whose_vector_misstates_its_origin_is_refused(state: NodeState) -> None:
    me = state.identity.node_id
    applied = state.replica.vv[me]
    _refused(state, [_event(state, vv={**state.replica.vv, me: applied + 1})], "seq - 1")
    _refused(state, [_event(state, vv={**state.replica.vv, me: applied - 1})], "seq - 1")


@pytest.mark.parametrize(
    "writes",
    [
        {zone_key("x.test."): {"gen": "zero", "live": True, "ttl": 60}},
        {zone_key("x.test."): None},
        {"rr x.test. 0 www.x.test. A nothex": {"rdata": "192.0.2.1"}},
        {"rr x.test. 0 has space.x.test. A " + "0" * 32: {"rdata": "192.0.2.1"}},
        {"what is this": 1},
        {"token abc": {"role": "root"}},
    ],
)
def test_malformed_writes_are_refused(state: NodeState, writes: dict[str, object]) -> None:
    _refused(state, [_event(state, writes=writes)], ".")


def test_forged_signature_is_refused(state: NodeState) -> None:
    event = _event(state)
    forged = dataclasses.replace(event, signature=bytes(64))
    _refused(state, [forged], "signature")


def test_groups_apply_whole_or_not_at_all(state: NodeState) -> None:
    me = state.writer.key
    first = _event(state, group=Group("g1", 1, 2))
    vv = {**state.replica.vv, first.body.origin: first.body.seq}
    second = _event(
        state,
        seq=first.body.seq + 1,
        vv=vv,
        group=Group("g1", 2, 2),
        writes={zone_key("y.test."): ZONE_VALUE},
    )
    _refused(state, [first], "incomplete")
    _refused(state, [second, first], "incomplete")
    state.replica.apply([first, second])
    assert state.replica.registers.value(zone_key("y.test.")) == ZONE_VALUE
    assert state.replica.vv[node_id_of(me.verify_key)] == second.body.seq


def test_event_whose_causal_past_is_missing_is_refused(state: NodeState) -> None:
    other = nacl.signing.SigningKey.generate()
    ahead = {**state.replica.vv, node_id_of(other.verify_key): 3}
    _refused(state, [_event(state, vv=ahead)], "not yet applied")


@pytest.mark.parametrize(
    "key",
    [
        "rr x.test. 0 www.x.test. FOO " + "0" * 32,
        "rr x.test. 0 " + "a" * 64 + ".x.test. A " + "0" * 32,
        "ttl x.test. -1 www.x.test. A",
        "ttl x.test. 1_0 www.x.test. A",
        "ttl x.test. 0 www.x.test. a",
    ],
)
def test_keys_that_could_not_be_served_are_refused(state: NodeState, key: str) -> None:
    value = {"ttl": 60} if key.startswith("ttl") else {"rdata": "192.0.2.1"}
    _refused(state, [_event(state, writes={key: value})], "bad")


OTHER = "f" * 64
MEMBER = {"name": "x", "peer": "127.0.0.1:1", "status": "active"}


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("rrset x.test. 0 www.x.test. A", {"ttl": 60, "rdata": ["192.0.2.1"]}, "rrset keys"),
        ("rr x.test. 0 www.x.test. CNAME " + "0" * 32, {"rdata": "a.x.test."}, "rrset keys"),
        ("ttl x.test. 0 x.test. SOA", {"ttl": 60}, "rrset keys"),
        ("member x", MEMBER, "bad node id"),
        ("member " + OTHER.upper(), MEMBER, "bad node id"),
        ("token 0123", {"name": "t", "role": "admin", "zones": None, "hash": OTHER}, "token id"),
        ("serial x.test. 0 " + OTHER, {"base": 1, "count": 0}, "another node"),
        ("cut " + OTHER + " " + OTHER, {"seq": 1}, "another node"),
    ],
)
def test_keys_of_the_wrong_kind_or_owner_are_refused(
    state: NodeState, key: str, value: object, why: str
) -> None:
    """A record type has one kind of key, so every node merges an owner's registers the same
    way; serial counters and cut reports are written only by the node they name."""
    _refused(state, [_event(state, writes={key: value})], why)


def test_a_soa_with_relative_names_from_a_peer_is_served_as_written(state: NodeState) -> None:
    """Rdata text is not checked before it applies: whatever parses is served, and nothing
    about it may stop the node, which rebuilds its zones from the same registers at start."""
    soa = "ns1 hostmaster 7 7200 3600 1209600 300"
    writes = {
        zone_key("x.test."): ZONE_VALUE,
        "rrset x.test. 0 x.test. SOA": {"ttl": 60, "rdata": [soa]},
    }
    state.replica.apply([_event(state, writes=writes)])
    served = state.replica.zones.get(dns.name.from_text("x.test."))
    assert served is not None
    state.replica.materialiser.rebuild()
    rebuilt = state.replica.zones.get(dns.name.from_text("x.test."))
    assert rebuilt is not None and rebuilt.rrset_count() == served.rrset_count()


def test_used_invite_outranks_a_concurrent_revoke() -> None:
    from node.registers import Register, wins

    key = "invite " + "ab" * 16
    base = {"issuer": "0" * 64, "expires": 1}
    used = Register({**base, "status": "used", "used_by": "1" * 64}, 1, "a", 1, "e1", None)
    revoked = Register({**base, "status": "revoked", "used_by": None}, 9, "b", 1, "e2", None)
    opened = Register({**base, "status": "open", "used_by": None}, 99, "c", 1, "e3", None)
    assert wins(key, used, revoked) and not wins(key, revoked, used)
    assert not wins(key, opened, revoked) and wins(key, revoked, opened)


GEN_ZONE = dns.name.from_text("gen.test.")


async def _copies(tmp_path: Path) -> tuple[NodeState, NodeState]:
    """A node serving GEN_ZONE, and a copy of it: one to fall behind, one to go ahead."""
    initialise(tmp_path / "a", NodeConfig(name="n1"), "test")
    first = NodeState.open(tmp_path / "a")
    ns = [dns.name.from_text("ns1.gen.test.")]
    await first.write("zone.create", lambda: first.editor.create_zone(GEN_ZONE, ns, 60, 1))
    first.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    return NodeState.open(tmp_path / "a"), NodeState.open(tmp_path / "b")


def _served(state: NodeState) -> Zone:
    zone = state.replica.materialiser.table.get(GEN_ZONE)
    assert zone is not None
    return zone


def _soa(state: NodeState) -> dns.rrset.RRset:
    soa = _served(state).get(GEN_ZONE, dns.rdatatype.SOA)
    assert soa is not None
    return soa


def _new_registers(behind: NodeState, ahead: NodeState) -> dict[str, tuple[Register, SignedEvent]]:
    """What anti-entropy would bring ``behind`` from ``ahead``: each register with its event."""
    return {
        key: (reg, ahead.replica.sources([key])[0][key])
        for key, reg in ahead.replica.registers.items()
        if behind.replica.registers.get(key) != reg
    }


async def test_a_generation_whose_records_came_before_its_zone_register_is_served(
    tmp_path: Path,
) -> None:
    """Anti-entropy may bring a new generation's records in one round and the zone register
    that starts it in a later one (causal delivery never does). The zone it starts must
    serve those records at once, as a restart would."""
    behind, ahead = await _copies(tmp_path)
    try:
        soa = _soa(ahead)
        records = [
            dns.rrset.from_text(f"h{i}.gen.test.", 60, "IN", "A", f"192.0.2.{i}") for i in range(3)
        ]
        await ahead.write(
            "zone.replace", lambda: ahead.editor.replace_zone(GEN_ZONE, [soa, *records], 7)
        )
        found = _new_registers(behind, ahead)
        zone_register = {zone_key("gen.test."): found.pop(zone_key("gen.test."))}
        assert found  # the new generation's records and serial
        await behind.repair(found, set())
        await behind.repair(zone_register, set())

        for record in records:
            assert _served(behind).get(record.name, dns.rdatatype.A) == record
        materialisers = (behind.replica.materialiser, ahead.replica.materialiser)
        assert len({m.serial("gen.test.") for m in materialisers}) == 1
    finally:
        behind.close()
        ahead.close()


async def test_records_ahead_of_a_generation_that_never_started_here_are_dropped(
    tmp_path: Path,
) -> None:
    """Anti-entropy brought generation 1's records, then generation 2 started (its zone
    register won): generation 1 never started here, and its records go as a started one's
    would. Kept, they would make this node's Merkle root differ from its peers' for good."""
    behind, ahead = await _copies(tmp_path)
    try:
        soa = _soa(ahead)
        for gen, address in ((1, "192.0.2.1"), (2, "192.0.2.2")):
            record = dns.rrset.from_text("h.gen.test.", 60, "IN", "A", address)
            await ahead.write(
                "zone.replace", lambda r=record: ahead.editor.replace_zone(GEN_ZONE, [soa, r], 7)
            )
            found = _new_registers(behind, ahead)
            if gen == 1:
                del found[zone_key("gen.test.")]  # its records come, its zone register not
            await behind.repair(found, set())
        assert _new_registers(behind, ahead) == {}
        assert behind.replica.registers.merkle.root() == ahead.replica.registers.merkle.root()
    finally:
        behind.close()
        ahead.close()


def test_the_spec_lists_exactly_the_type_mnemonics_keys_accept() -> None:
    """Which types a state key may name by mnemonic is part of the protocol: a dnspython
    that knows another type must show here, not change valid keys silently."""
    text = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    section = text.split("## Type mnemonics", 1)[1].split("```", 2)[1]
    listed = {
        (int(number), mnemonic)
        for number, mnemonic in (pair.split() for pair in " ".join(section.split()).split(", "))
    }
    known = {
        (int(rdtype), dns.rdatatype.to_text(rdtype))
        for rdtype in dns.rdatatype.RdataType
        if not dns.rdatatype.to_text(rdtype).startswith("TYPE")
    }
    assert listed == known
    for number, mnemonic in listed:
        if mnemonic in ("SOA", "CNAME", "DNAME"):
            kind, value = "rrset", {"ttl": 1, "rdata": ["x"]}
        else:
            kind, value = "ttl", {"ttl": 1}
        check_write(f"{kind} x.test. 0 x.test. {mnemonic}", value, "")
        with pytest.raises(StateKeyError):  # TYPEnnn only for a type without a mnemonic
            check_write(f"{kind} x.test. 0 x.test. TYPE{number}", value, "")
