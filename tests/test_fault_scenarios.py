"""Fault scenarios on the shared proxied cluster (``cluster3``): a partition with writes on
both sides, crashes in the middle of a write stream, links that flap, and a member cut off
past the stale limit. Each ends with every node converged (equal vectors and Merkle
roots) and serving the same answers."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import httpx
import pytest

from tests.cluster import Cluster, poll
from tests.conftest import STALE_AFTER_MS
from tests.test_cluster import partitioned


def _zone(cluster: Cluster, zone: str) -> None:
    with cluster.nodes[0].client() as api:
        api.post("/api/v1/zones", json={"name": zone, "ns": [f"ns1.{zone}"]}).raise_for_status()
    cluster.wait_converged()


def _put(cluster: Cluster, node: int, zone: str, name: str, rtype: str, value: str) -> bool:
    """True when the node acknowledged the write (2xx)."""
    try:
        with cluster.nodes[node].client() as api:
            response = api.put(
                f"/api/v1/zones/{zone}/rrsets/{name}/{rtype}",
                json={"ttl": 60, "records": [value]},
            )
    except httpx.HTTPError:
        return False
    return response.status_code < 300


def _served(cluster: Cluster, names: list[str], rtype: str = "A") -> dict[str, object]:
    answers = [cluster.answers(i, names, rtype) for i in cluster.running()]
    assert all(a == answers[0] for a in answers)
    return answers[0]


def _rss_kib(cluster: Cluster, index: int) -> int:
    proc = cluster.nodes[index].proc
    assert proc is not None
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_partition_with_writes_on_both_sides_then_heal(cluster3: Cluster) -> None:
    zone = "split.test."
    _zone(cluster3, zone)
    acked: dict[str, set[str]] = {}
    with partitioned(cluster3, (0, 1), (2,)):
        for step in range(10):
            for node, side in ((step % 2, "ab"), (2, "c")):
                own, address = (
                    f"{side}{step}.{zone}",
                    f"192.0.2.{step + (0 if side == 'ab' else 100)}",
                )
                assert _put(cluster3, node, zone, own, "A", address)
                acked[own] = {address}
                # The same RRset replaced on both sides: each side deletes only what it saw,
                # so both new records stay.
                shared = f"both{step}.{zone}"
                assert _put(cluster3, node, zone, shared, "A", address)
                acked.setdefault(shared, set()).add(address)
            # The same singleton key on both sides: one value wins, the same everywhere.
            for node in (0, 2):
                assert _put(cluster3, node, zone, f"alias{step}.{zone}", "CNAME", f"n{node}.{zone}")
    statuses = cluster3.wait_converged()
    assert all(not s["rejected_events"] for s in statuses)
    served = _served(cluster3, sorted(acked))
    for name, addresses in acked.items():
        rcode, rrsets = served[name]  # type: ignore[misc]
        records = "\n".join(f"{name} 60 in a {a}" for a in sorted(addresses))
        assert (rcode, rrsets) == (0, [records]), name
    aliases = _served(cluster3, [f"alias{s}.{zone}" for s in range(10)], "CNAME")
    for rcode, rrsets in aliases.values():  # type: ignore[misc]
        assert rcode == 0 and len(rrsets) == 1
        assert rrsets[0].split()[-1] in (f"n0.{zone}", f"n2.{zone}")


def test_a_cut_link_is_bypassed_through_the_third_node(cluster3: Cluster) -> None:
    zone = "bypass.test."
    _zone(cluster3, zone)
    cluster3.proxies[(0, 2)].cut()
    cluster3.proxies[(2, 0)].cut()
    try:
        cluster3.wait_links(lambda i, j: {i, j} != {0, 2})
        names = {0: f"from0.{zone}", 2: f"from2.{zone}"}
        for node, name in names.items():
            assert _put(cluster3, node, zone, name, "A", f"192.0.2.{node + 1}")

        def everywhere() -> bool:
            return all(
                rcode == 0
                for index in range(3)
                for rcode, _ in cluster3.answers(index, names.values()).values()
            )

        poll(everywhere, "writes did not go round the cut link")
    finally:
        cluster3.heal()
    statuses = cluster3.wait_converged()
    assert all(not s["rejected_events"] for s in statuses)


def _write_stream(
    cluster: Cluster, node: int, zone: str, run: int, stop: threading.Event, acked: list[str]
) -> None:
    """Writes to one node until stopped (or it dies), noting each write it acknowledged."""
    for step in range(1000):
        if stop.is_set():
            return
        name = f"r{run}-{step}.{zone}"
        if _put(cluster, node, zone, name, "A", f"198.51.100.{step % 250}"):
            acked.append(name)


def test_a_node_killed_mid_stream_loses_nothing_it_acknowledged(cluster3: Cluster) -> None:
    zone = "crash.test."
    _zone(cluster3, zone)
    victim = 2
    rng = random.Random(5)
    acked: list[str] = []
    for round_ in range(3):
        stop = threading.Event()
        thread = threading.Thread(
            target=_write_stream, args=(cluster3, victim, zone, round_, stop, acked)
        )
        thread.start()
        enough = len(acked) + rng.randrange(3, 15)
        poll(lambda: len(acked) >= enough, "writes")  # noqa: B023 (called at once)
        cluster3.nodes[victim].kill9()
        stop.set()
        thread.join(timeout=60)
        cluster3.nodes[victim].start()
    cluster3.wait_converged()
    served = _served(cluster3, acked)
    lost = [name for name in acked if served[name][0] != 0]  # type: ignore[index]
    assert not lost, lost


def test_flapping_links_converge_without_duplicates_or_growth(cluster3: Cluster) -> None:
    zone = "flap.test."
    _zone(cluster3, zone)
    rss_before = [_rss_kib(cluster3, i) for i in range(3)]
    serial = cluster3.answers(0, [zone], "SOA")[zone][1][0].split()[6]
    rng = random.Random(6)
    writes = 0
    for _ in range(15):
        pair = rng.choice(list(cluster3.proxies))
        cluster3.proxies[pair].cut()
        for node in range(3):
            assert _put(cluster3, node, zone, f"f{writes}.{zone}", "A", "192.0.2.1")
            writes += 1
        cluster3.proxies[pair].heal()
    statuses = cluster3.wait_converged()
    assert all(not s["rejected_events"] for s in statuses)
    # Each write bumps the serial once: an event applied twice would count twice.
    soa = _served(cluster3, [zone], "SOA")[zone][1][0].split()  # type: ignore[index]
    assert int(soa[6]) == int(serial) + writes
    served = _served(cluster3, [f"f{i}.{zone}" for i in range(writes)])
    assert all(rcode == 0 for rcode, _ in served.values())  # type: ignore[misc]
    growth = [_rss_kib(cluster3, i) - before for i, before in enumerate(rss_before)]
    assert max(growth) < 64 * 1024, growth  # KiB: bounded, not a leak per cut


def test_a_member_cut_off_past_the_stale_limit_resyncs_from_a_snapshot(cluster3: Cluster) -> None:
    zone = "stale.test."
    _zone(cluster3, zone)
    a, c = cluster3.ids[0], cluster3.ids[2]
    assert _put(cluster3, 0, zone, f"gone.{zone}", "A", "192.0.2.1")
    cluster3.wait_converged()
    acked: dict[str, str] = {}
    with partitioned(cluster3, (0, 1), (2,)):
        for step in range(4):
            for node, side in ((step % 2, "ab"), (2, "c")):
                name, address = f"{side}{step}.{zone}", f"192.0.2.{step + 10 * node}"
                assert _put(cluster3, node, zone, name, "A", address)
                acked[name] = address
        with cluster3.nodes[1].client() as api:
            api.delete(f"/api/v1/zones/{zone}/rrsets/gone.{zone}/A").raise_for_status()
        c_has = cluster3.status(2)["clock"]["version_vector"][a]

        def compacted_past_c() -> bool:
            """A and B both: otherwise C could catch up with events from the other."""
            for index in (0, 1):
                status = cluster3.status(index)
                member = next(m for m in status["members"] if m["id"] == c)
                if member["membership"] != "stale" or status["storage"]["compacted"][a] <= c_has:
                    return False
            return True

        # The majority marks C stale and compacts past it; C, in a minority, marks nobody.
        poll(
            compacted_past_c,
            "A and B did not compact past the cut-off member",
            4 * STALE_AFTER_MS / 1000,
        )
        seen_from_c = cluster3.status(2)["members"]
        assert all(m["membership"] != "stale" for m in seen_from_c), seen_from_c
        with cluster3.nodes[0].client() as api:
            assert f'peer53_member_stale{{id="{c}",name="n3"}} 1.0' in api.get("/metrics").text
    cluster3.wait_converged()
    returned = cluster3.status(2)["storage"]
    assert returned["snapshots_installed"] >= 1
    with cluster3.nodes[2].client() as api:
        installed = f"peer53_snapshots_installed_total {float(returned['snapshots_installed'])}"
        assert installed in api.get("/metrics").text
    assert all(m["membership"] != "stale" for m in cluster3.status(0)["members"])
    served = _served(cluster3, [*sorted(acked), f"gone.{zone}"])
    for name, address in acked.items():
        assert served[name] == (0, [f"{name} 60 in a {address}"]), name
    assert served[f"gone.{zone}"][0] == 3  # type: ignore[index]  # NXDOMAIN: still deleted


@pytest.fixture(autouse=True)
def _healed(cluster3: Cluster) -> None:
    """Every scenario starts with all links up."""
    cluster3.heal()
