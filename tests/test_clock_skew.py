"""Scenario: members an hour ahead and an hour behind. A write that follows another write,
as seen by the node that makes it, wins everywhere, whatever the wall clocks say: the
hybrid logical clock of a node moves past every stamp it has applied."""

from __future__ import annotations

import datetime
import email.utils

import pytest

from tests.cluster import Cluster, poll

ZONE = "skew.test."
NAME = f"x.{ZONE}"


@pytest.fixture(scope="module", autouse=True)
def zone(cluster5: Cluster) -> None:
    with cluster5.nodes[0].client() as api:
        api.post("/api/v1/zones", json={"name": ZONE}).raise_for_status()
    cluster5.wait_converged()


def _put(cluster: Cluster, node: int, address: str) -> None:
    everyone = len(cluster.running())
    with cluster.nodes[node].client() as api:
        response = api.put(
            f"/api/v1/zones/{ZONE}/rrsets/x/A?wait={everyone}&timeout=30",
            json={"ttl": 60, "records": [address]},
        )
    assert response.status_code in (200, 201), response.text
    assert response.json()["applied"] == everyone


def _wall_clock(cluster: Cluster, node: int) -> datetime.datetime:
    """The node's own idea of the time: the Date header its API sends."""
    with cluster.nodes[node].client() as api:
        return email.utils.parsedate_to_datetime(api.get("/healthz").headers["date"])


def _served(cluster: Cluster) -> set[tuple[int, tuple[str, ...]]]:
    found = set()
    for i in cluster.running():
        rcode, rrsets = cluster.answers(i, [NAME])[NAME]
        found.add((int(rcode), tuple(rrsets)))
    return found


def test_a_later_write_wins_whatever_the_clocks(cluster5: Cluster) -> None:
    normal, ahead, behind = cluster5.running()[:3]
    skews = {ahead: "+1h", behind: "-1h"}
    for index, offset in skews.items():
        cluster5.nodes[index].stop()
        cluster5.nodes[index].start(clock_offset=offset)
    try:
        cluster5.wait_converged()
        skew = _wall_clock(cluster5, ahead) - _wall_clock(cluster5, behind)
        assert skew > datetime.timedelta(hours=1.5)  # the clocks really differ
        # Each write is made after its node applied the one before.
        for node, address in ((ahead, "192.0.2.1"), (normal, "192.0.2.2"), (behind, "192.0.2.3")):
            _put(cluster5, node, address)
            poll(
                lambda a=address: _served(cluster5) == {(0, (f"{NAME} 60 in a {a}",))},
                f"the write of {address} did not win everywhere",
            )
        statuses = cluster5.wait_converged()
        assert all(not s["rejected_events"] for s in statuses)
    finally:
        for index in skews:
            cluster5.nodes[index].stop()
            cluster5.nodes[index].start()
    cluster5.wait_converged()
