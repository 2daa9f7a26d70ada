"""Compaction on one node, in process: disk use plateaus under churn, and what compaction
deletes never changes what is served or what the node remembers about itself."""

from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rrset
import pytest
import trio

from node.bootstrap import initialise
from node.config import NodeConfig
from node.replication.compaction import Compactor
from node.replication.snapshots import Snapshots
from node.service import DB_FILE, NodeState

ORIGIN = dns.name.from_text("example.com.")
RECORDS = 1000
ROUNDS = 50  # 50,000 rewrites in all
NAMES = [dns.name.from_text(f"h{i}.example.com.") for i in range(RECORDS)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    initialise(d, NodeConfig(name="n1"), "test")
    return d


def _disk_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob(f"{DB_FILE}*"))


async def _rewrite_all(state: NodeState, round_: int) -> None:
    """Give every record a new address: each rewrite leaves a tombstone and an event."""
    changes: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset | None] = {}
    for i, name in enumerate(NAMES):
        address = f"10.{round_ % 250}.{i // 250}.{i % 250}"
        rdata = dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, address)
        changes[(name, dns.rdatatype.A)] = dns.rrset.from_rdata(name, 300, rdata)
    await state.write("rrset.put", lambda: state.editor.change_rrsets(ORIGIN, changes))


def _served(state: NodeState, name: dns.name.Name) -> str:
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    rrset = zone.get(name, dns.rdatatype.A)
    assert rrset is not None
    return str(rrset[0])


def test_disk_use_plateaus_while_the_same_records_are_rewritten(data_dir: Path) -> None:
    sizes: list[int] = []

    async def main() -> None:
        state = NodeState.open(data_dir)
        ns = [dns.name.from_text("ns1.example.com.")]
        await state.write("zone.create", lambda: state.editor.create_zone(ORIGIN, ns, 3600, 1))
        compactor = Compactor(state, {}, Snapshots(state), lambda: [])
        for round_ in range(ROUNDS):
            await _rewrite_all(state, round_)
            await compactor.compact()
            sizes.append(_disk_bytes(data_dir))
            # At most the first events plus the last rewrite are still referenced.
            assert compactor.stats.sizes["log_events"] <= 4
            assert compactor.stats.sizes["tombstones"] <= RECORDS
        assert compactor.stats.tombstones_purged >= (ROUNDS - 2) * RECORDS
        assert _served(state, NAMES[7]) == f"10.{(ROUNDS - 1) % 250}.0.7"
        state.close()

    trio.run(main)
    settled = sizes[ROUNDS // 5]
    assert max(sizes[ROUNDS // 5 :]) <= settled * 1.05, sizes


def test_compaction_keeps_the_vector_the_clock_and_the_served_data_across_a_restart(
    data_dir: Path,
) -> None:
    async def churn() -> tuple[dict[str, int], int, bytes]:
        state = NodeState.open(data_dir)
        ns = [dns.name.from_text("ns1.example.com.")]
        await state.write("zone.create", lambda: state.editor.create_zone(ORIGIN, ns, 3600, 1))
        compactor = Compactor(state, {}, Snapshots(state), lambda: [])
        for round_ in range(3):
            await _rewrite_all(state, round_)
            await compactor.compact()
        assert compactor.stats.events_deleted > 0
        result = (
            dict(state.replica.vv),
            state.writer.last_hlc,
            state.replica.registers.merkle.root(),
        )
        state.close()
        return result

    vv, last_hlc, root = trio.run(churn)
    again = NodeState.open(data_dir)
    assert again.replica.vv == vv
    assert again.writer.last_hlc >= last_hlc
    assert again.replica.registers.merkle.root() == root
    assert _served(again, NAMES[3]) == "10.2.0.3"
    (event,) = again.write_now("setting.put", {"setting probe": {"value": 1}})
    assert event.body.seq == vv[again.identity.node_id] + 1
    assert event.body.hlc > last_hlc
    again.close()
