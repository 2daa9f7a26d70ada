"""Causal delivery and convergence: any arrival order of the same events, same state."""

import random
import tempfile
from pathlib import Path

import dns.rdata
import nacl.signing
from hypothesis import given, settings
from hypothesis import strategies as st

from node.registers import Register
from node.replica import Replica
from node.replication.delivery import CausalBuffer
from node.store.database import Database
from protocol.clock import hlc_tick, vv_merge
from protocol.events import EventBody, Group, SignedEvent, node_id_of, sign_event
from protocol.statekeys import (
    member_key,
    rdata_digest,
    rr_key,
    rrset_key,
    serial_key,
    setting_key,
    token_key,
    ttl_key,
    zone_key,
)

CLUSTER = "c"
KEYS = [nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(3)]
IDS = [node_id_of(k.verify_key) for k in KEYS]
TOKEN = {"name": "t", "role": "reader", "zones": None, "hash": "0" * 64}
ZONE = "z.test."
SOA = "ns.z.test. hostmaster.z.test. 0 3600 600 86400 300"


class Simulated:
    """Three writers, each with its own view of what it has seen."""

    def __init__(self) -> None:
        self.events: list[SignedEvent] = []
        self.seen: list[dict[str, int]] = [{} for _ in KEYS]
        self.seq = [0, 0, 0]
        self.hlc = [0, 0, 0]
        self.gen = [-1, -1, -1]  # the zone generation each writer has seen (-1: none)
        genesis = {member_key(i): {"name": i[:4], "peer": "", "status": "active"} for i in IDS}
        self.write(0, genesis)

    def write(self, node: int, writes: dict[str, object], group: Group | None = None) -> None:
        self.seq[node] += 1
        self.hlc[node] = hlc_tick(self.hlc[node], 1000 + len(self.events))
        body = EventBody(
            CLUSTER,
            IDS[node],
            self.seq[node],
            dict(self.seen[node]),
            self.hlc[node],
            "test",
            writes,
            group,  # type: ignore[arg-type]
        )
        self.events.append(sign_event(body, KEYS[node]))
        self.seen[node][IDS[node]] = self.seq[node]

    def sync(self, source: int, target: int) -> None:
        self.seen[target] = vv_merge(self.seen[target], self.seen[source])
        self.gen[target] = max(self.gen[target], self.gen[source])

    def zone(self, node: int, live: bool, address: int) -> None:
        """Delete, or create/import with one A record: always a new generation."""
        self.gen[node] += 1
        gen = self.gen[node]
        writes: dict[str, object] = {zone_key(ZONE): {"gen": gen, "live": live, "ttl": 60}}
        if live:
            writes[rrset_key(ZONE, gen, ZONE, "SOA")] = {"ttl": 60, "rdata": [SOA]}
            writes[serial_key(ZONE, gen, IDS[node])] = {"base": 0, "count": 1}
            writes.update(self.record(node, address))
        self.write(node, writes)

    def record(self, node: int, address: int) -> dict[str, object]:
        gen, text = self.gen[node], f"192.0.2.{address}"
        digest = rdata_digest(dns.rdata.from_text("IN", "A", text))
        return {
            rr_key(ZONE, gen, "www." + ZONE, "A", digest): {"rdata": text},
            ttl_key(ZONE, gen, "www." + ZONE, "A"): {"ttl": 60},
        }


def _scenario(ops: list[tuple[int, int, int, int]]) -> list[SignedEvent]:
    sim = Simulated()
    for node in (1, 2):
        sim.sync(0, node)
    for kind, node, key, value in ops:
        if kind == 0:
            sim.write(node, {setting_key(f"k{key}"): {"value": value}})
        elif kind == 1:
            revoked = {"revoked": True} if value % 3 == 0 else TOKEN
            sim.write(node, {token_key(f"{key:016x}"): revoked})
        elif kind == 2:
            gid = f"g{len(sim.events)}"
            sim.write(node, {setting_key(f"k{key}"): {"value": value}}, Group(gid, 1, 2))
            sim.write(node, {setting_key(f"k{key + 1}"): {"value": value}}, Group(gid, 2, 2))
        elif kind == 3:
            sim.zone(node, live=key != 0, address=value)
        elif kind == 4 and sim.gen[node] >= 0:
            sim.write(node, sim.record(node, value))
        else:
            sim.sync(node, (node + value) % 3)
    return sim.events


Converged = tuple[dict[str, Register], list[str]]


def _converge(events: list[SignedEvent], order: random.Random, tmp: Path) -> Converged:
    replica = Replica(Database(tmp / f"{len(list(tmp.iterdir()))}.db"), CLUSTER, "")
    buffer = CausalBuffer()
    shuffled = events[:]
    order.shuffle(shuffled)
    while shuffled:
        size = order.randint(1, 4)
        chunk, shuffled = shuffled[:size], shuffled[size:]
        buffer.add(chunk, replica.vv)
        ready = buffer.ready(replica.vv)
        if ready:
            replica.apply(ready)
    assert len(buffer) == 0 and not buffer.conflicts
    served = sorted(r.to_text() for zone in replica.zones for r in zone.rrsets())
    keys = replica.materialiser.zone_generation(ZONE)
    for key in dict(replica.registers.items()):
        if key.startswith(("rr ", "ttl ", "rrset ")):
            # a deleted generation's records are gone, never merely hidden
            assert keys is not None and int(key.split(" ")[2]) == keys.gen
    return dict(replica.registers.items()), served


OPS = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 3), st.integers(0, 10)),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**32))
def test_any_arrival_order_gives_the_same_state(
    ops: list[tuple[int, int, int, int]], seed: int
) -> None:
    events = _scenario(ops)
    with tempfile.TemporaryDirectory() as tmp:
        reference = _converge(events, random.Random(0), Path(tmp))
        for n in range(3):
            assert _converge(events, random.Random(seed + n), Path(tmp)) == reference


def test_groups_are_released_whole() -> None:
    sim = Simulated()
    sim.write(0, {setting_key("a"): {"value": 1}}, Group("g", 1, 2))
    sim.write(0, {setting_key("b"): {"value": 2}}, Group("g", 2, 2))
    genesis, first, second = sim.events
    buffer = CausalBuffer()
    buffer.add([genesis, first], {})
    assert buffer.ready({}) == [genesis]
    assert buffer.ready({IDS[0]: 1}) == []  # half a group waits
    buffer.add([second], {IDS[0]: 1})
    assert buffer.ready({IDS[0]: 1}) == [first, second]


def test_reused_sequence_number_is_reported() -> None:
    a, b = Simulated(), Simulated()
    a.write(0, {setting_key("x"): {"value": 1}})
    b.write(0, {setting_key("x"): {"value": 2}})
    buffer = CausalBuffer()
    buffer.add([a.events[1]], {IDS[0]: 1})
    buffer.add([b.events[1]], {IDS[0]: 1})
    assert buffer.conflicts == [(a.events[1], b.events[1])]
    assert buffer.ready({IDS[0]: 1}) == [a.events[1]]


def test_already_applied_events_are_dropped() -> None:
    sim = Simulated()
    buffer = CausalBuffer()
    buffer.add(sim.events, {IDS[0]: 1})
    assert len(buffer) == 0


def test_a_higher_zone_generation_wins_over_a_later_stamp(tmp_path: Path) -> None:
    """Node 0 deletes and re-creates the zone; node 1, which saw none of it, creates it
    later by the clock. Generations only grow, so node 0's newest generation is served
    everywhere and node 1's records (an older generation) are dropped in every order."""
    sim = Simulated()
    sim.sync(0, 1)
    sim.zone(0, live=True, address=1)
    sim.zone(0, live=False, address=0)
    sim.zone(0, live=True, address=2)
    sim.zone(1, live=True, address=3)
    results = [_converge(sim.events, random.Random(seed), tmp_path) for seed in range(8)]
    registers, served = results[0]
    assert all(result == results[0] for result in results)
    assert any("192.0.2.2" in line for line in served)
    assert not any("192.0.2.3" in line or "192.0.2.1" in line for line in served)
    assert registers[zone_key(ZONE)].value == {"gen": 2, "live": True, "ttl": 60}
