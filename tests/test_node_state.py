"""The write path without sockets: init, events applied to SQLite and the zone index."""

import stat
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.bootstrap import AlreadyInitialised, initialise
from node.config import NodeConfig
from node.service import NodeState

ORIGIN = dns.name.from_text("example.com.")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    token = initialise(d, NodeConfig(name="n1"), "test")
    assert token.startswith("p53.")
    return d


def _create(state: NodeState) -> None:
    ns = [dns.name.from_text("ns1.example.com.")]
    state.write_now("zone.create", state.editor.create_zone(ORIGIN, ns, 3600, 2026010100))


def test_init_creates_private_files_and_refuses_twice(data_dir: Path) -> None:
    for name in ("node.key", "ca.key", "admin.token"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    with pytest.raises(AlreadyInitialised, match="refusing"):
        initialise(data_dir, NodeConfig(name="n1"), "test")


def test_zone_create_put_delete_survive_restart(data_dir: Path) -> None:
    state = NodeState.open(data_dir)
    _create(state)
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    soa = zone.get(ORIGIN, dns.rdatatype.SOA)
    assert soa is not None and soa[0].serial == 2026010100
    www = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    state.write_now("rrset.put", state.editor.change_rrsets(ORIGIN, {(www.name, www.rdtype): www}))
    smaller = dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.2")
    state.write_now(
        "rrset.put", state.editor.change_rrsets(ORIGIN, {(smaller.name, smaller.rdtype): smaller})
    )
    root = state.replica.registers.merkle.root()
    state.close()

    again = NodeState.open(data_dir)
    zone = again.replica.zones.get(ORIGIN)
    assert zone is not None
    got = zone.get(www.name, dns.rdatatype.A)
    assert got == smaller and got is not None and got.ttl == 60
    soa = zone.get(ORIGIN, dns.rdatatype.SOA)
    assert soa is not None and soa[0].serial == 2026010102
    assert again.replica.registers.merkle.root() == root
    again.close()


def test_zone_delete_and_recreate_leaves_no_old_records(data_dir: Path) -> None:
    state = NodeState.open(data_dir)
    _create(state)
    www = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1")
    state.write_now("rrset.put", state.editor.change_rrsets(ORIGIN, {(www.name, www.rdtype): www}))
    state.write_now("zone.delete", state.editor.delete_zone(ORIGIN))
    assert state.replica.zones.get(ORIGIN) is None
    _create(state)
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None and zone.get(www.name, dns.rdatatype.A) is None
    state.close()
    again = NodeState.open(data_dir)
    zone = again.replica.zones.get(ORIGIN)
    assert zone is not None and zone.get(www.name, dns.rdatatype.A) is None
    assert not any(
        " 0 " in key for key, _ in again.replica.registers.items() if key.startswith("rr ")
    )
    again.close()


def test_replace_keeps_file_serial_then_raises_it(data_dir: Path) -> None:
    state = NodeState.open(data_dir)
    records = [
        dns.rrset.from_text(
            "example.com.", 3600, "IN", "SOA", "ns1.example.com. h.example.com. 42 1 1 1 1"
        ),
        dns.rrset.from_text("example.com.", 3600, "IN", "NS", "ns1.example.com."),
    ]
    state.write_now("zone.import", state.editor.replace_zone(ORIGIN, records, 42))
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    assert zone.get(ORIGIN, dns.rdatatype.SOA)[0].serial == 42  # type: ignore[index]
    state.write_now("zone.import", state.editor.replace_zone(ORIGIN, records, 42))
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    assert zone.get(ORIGIN, dns.rdatatype.SOA)[0].serial == 43  # type: ignore[index]
    state.close()


def test_serial_never_goes_back_across_delete_and_create(data_dir: Path) -> None:
    state = NodeState.open(data_dir)
    _create(state)
    www = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.1")
    state.write_now("rrset.put", state.editor.change_rrsets(ORIGIN, {(www.name, www.rdtype): www}))
    state.write_now("zone.delete", state.editor.delete_zone(ORIGIN))
    _create(state)  # asks for 2026010100 again; 2026010101 was served before the delete
    zone = state.replica.zones.get(ORIGIN)
    assert zone is not None
    assert zone.get(ORIGIN, dns.rdatatype.SOA)[0].serial == 2026010102  # type: ignore[index]
    state.close()
