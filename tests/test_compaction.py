"""Compaction on one node, in process: disk use plateaus under churn, and what compaction
deletes never changes what is served or what the node remembers about itself."""

import sqlite3
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest
import trio

from node.bootstrap import initialise
from node.config import NodeConfig
from node.service import DB_FILE, NodeState
from scripts.benchlib.compaction import NAMES, ORIGIN, RECORDS, Sample, churn

ROUNDS = 50  # 50,000 rewrites in all


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    initialise(d, NodeConfig(name="n1"), "test")
    return d


def _served(state: NodeState, name: dns.name.Name) -> str:
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    rrset = zone.get(name, dns.rdatatype.A)
    assert rrset is not None
    return str(rrset[0])


def test_disk_use_plateaus_while_the_same_records_are_rewritten(data_dir: Path) -> None:
    samples: list[Sample] = []
    state = trio.run(churn, data_dir, ROUNDS, samples.append)
    assert _served(state, NAMES[7]) == f"10.{(ROUNDS - 1) % 250}.0.7"
    state.close()
    assert samples[-1].rewrites == ROUNDS * RECORDS
    # Only the zone's first events and the last rewrite are still referenced; only the
    # last rewrite's tombstones are not stable yet.
    assert all(s.log_events <= 4 and s.tombstones <= RECORDS for s in samples), samples
    sizes = [s.disk_bytes for s in samples]
    settled = sizes[ROUNDS // 5]
    assert max(sizes[ROUNDS // 5 :]) <= settled * 1.05, sizes


def test_compaction_keeps_the_vector_the_clock_and_the_served_data_across_a_restart(
    data_dir: Path,
) -> None:
    samples: list[Sample] = []
    state = trio.run(churn, data_dir, 3, samples.append)
    vv, last_hlc = dict(state.replica.vv), state.writer.last_hlc
    assert samples[-1].log_events < sum(vv.values())  # overwritten rewrites are gone
    root = state.replica.registers.merkle.root()
    state.close()

    again = NodeState.open(data_dir)
    assert again.replica.vv == vv
    assert again.writer.last_hlc >= last_hlc
    assert again.replica.registers.merkle.root() == root
    assert _served(again, NAMES[3]) == "10.2.0.3"
    (event,) = again.write_now("setting.put", {"setting probe": {"value": 1}})
    assert event.body.seq == vv[again.identity.node_id] + 1
    assert event.body.hlc > last_hlc
    again.close()


def test_logged_events_beyond_the_vector_are_applied_again_at_start(data_dir: Path) -> None:
    """As after a snapshot install that stopped before its own events were applied again:
    the applied vector is behind the log, and the state lacks the last event's writes."""
    state = trio.run(churn, data_dir, 1, lambda _: None)
    www = dns.rrset.from_text(f"www.{ORIGIN}", 60, "IN", "A", "192.0.2.7")
    (event,) = state.write_now(
        "rrset.put", state.editor.change_rrsets(ORIGIN, {(www.name, www.rdtype): www})
    )
    me, root = state.identity.node_id, state.replica.registers.merkle.root()
    state.close()
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("UPDATE applied SET seq = ? WHERE origin = ?", [event.body.seq - 1, me])
        db.execute("DELETE FROM state WHERE origin = ? AND seq = ?", [me, event.body.seq])
    again = NodeState.open(data_dir)
    assert again.replica.vv[me] == event.body.seq
    assert again.replica.registers.merkle.root() == root
    assert _served(again, www.name) == "192.0.2.7"
    again.close()
