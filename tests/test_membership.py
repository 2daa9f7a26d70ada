"""Member removal and leaving, with real nodes: the removed node is refused everywhere, its
events up to the cut count everywhere and later ones nowhere, and a node can leave."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.bootstrap import initialise
from node.config import NodeConfig
from node.members import MemberError, leave_writes, removal_writes
from node.service import NodeState
from tests.cluster import Cluster, ctl, poll
from tests.nodeproc import peer53

ZONE = "members.test."


@pytest.fixture(scope="module", autouse=True)
def zone(cluster5: Cluster) -> None:
    with cluster5.nodes[0].client() as api:
        api.post("/api/v1/zones", json={"name": ZONE}).raise_for_status()
    cluster5.wait_converged()


def _put(cluster: Cluster, node: int, name: str, address: str) -> httpx.Response:
    with cluster.nodes[node].client() as api:
        body = {"ttl": 60, "records": [address]}
        return api.put(f"/api/v1/zones/{ZONE}/rrsets/{name}/A", json=body)


def _members(cluster: Cluster, node: int) -> dict[str, Any]:
    with cluster.nodes[node].client() as api:
        members = api.get("/api/v1/members").raise_for_status().json()["members"]
    return {m["id"]: m for m in members}


def test_a_member_removed_during_writes_is_cut_off_everywhere(
    cluster5: Cluster, tmp_path: Path
) -> None:
    victim = len(cluster5.nodes) - 1
    victim_id = cluster5.ids[victim]
    writers = [0, 1, 2, victim]
    stayers = [i for i in cluster5.running() if i != victim]
    node = cluster5.nodes[victim]
    node.stop()
    old_copy = tmp_path / "old"
    shutil.copytree(node.data_dir, old_copy)
    node.start()
    cluster5.wait_converged()

    stop = threading.Event()

    def writer(index: int) -> None:
        for step in range(200):
            if stop.is_set():
                return
            _put(cluster5, index, f"w{index}-{step}", f"192.0.2.{step % 250}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in writers]
    for thread in threads:
        thread.start()
    try:
        poll(lambda: cluster5.status(0)["clock"]["version_vector"].get(victim_id, 0) > 5, "writes")
        removed = ctl(cluster5.nodes[0], "member", "remove", victim_id)
        assert f"removed member {victim_id}" in removed.stdout
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    node.stop()

    # Every remaining member reports, and all end with the same cut and the same events.
    def reported() -> bool:
        return all(_members(cluster5, i)[victim_id]["cut_reports"] == len(stayers) for i in stayers)

    poll(reported, "cut reports")
    statuses = cluster5.wait_converged()
    cut = _members(cluster5, 0)[victim_id]["cut"]
    assert {_members(cluster5, i)[victim_id]["cut"] for i in stayers} == {cut}
    assert {s["clock"]["version_vector"].get(victim_id, 0) for s in statuses} == {cut}
    assert all(victim_id not in {m["id"] for m in s["members"]} for s in statuses)
    listing = ctl(cluster5.nodes[0], "member", "list").stdout
    assert victim_id in listing and "removed" in listing

    # Its old data, restarted: refused on every link, and nothing it writes gets in.
    refused_before = [cluster5.status(i)["refused_links"].get("not_member", 0) for i in stayers]
    shutil.rmtree(node.data_dir)
    shutil.copytree(old_copy, node.data_dir)
    node.start()
    try:
        # Its peers hold more of its own events than it has: it may not write until they
        # are back, which they never will be.
        held = _put(cluster5, victim, "late", "203.0.113.9")
        assert held.status_code == 503 and held.json()["error"]["code"] == "writes_held"

        def refused() -> bool:
            now = [cluster5.status(i)["refused_links"].get("not_member", 0) for i in stayers]
            return all(a > b for a, b in zip(now, refused_before, strict=True))

        poll(refused, "the removed node was not refused")
    finally:
        node.stop(signal.SIGKILL)
    for i in stayers:
        assert cluster5.status(i)["clock"]["version_vector"].get(victim_id, 0) == cut
        assert cluster5.answers(i, [f"late.{ZONE}"])[f"late.{ZONE}"][0] == 3  # NXDOMAIN


def test_removing_the_node_answering_needs_force(cluster5: Cluster) -> None:
    me = cluster5.ids[1]
    result = ctl(cluster5.nodes[1], "member", "remove", me, check=False)
    assert result.returncode == 1
    assert "--force" in result.stderr and "answering this request" in result.stderr
    assert _members(cluster5, 1)[me]["membership"] == "active"
    gone = ctl(cluster5.nodes[1], "member", "remove", "f" * 64, check=False)
    assert gone.returncode == 1 and "no member" in gone.stderr


def test_removing_and_leaving_honour_if_match(cluster5: Cluster) -> None:
    me = cluster5.ids[1]
    with cluster5.nodes[1].client() as api:
        etag = api.get(f"/api/v1/members/{me}").raise_for_status().headers["ETag"]
        for method, path in (
            ("DELETE", f"/api/v1/members/{me}?force=true"),
            ("POST", "/api/v1/cluster/leave"),
        ):
            stale = api.request(method, path, headers={"If-Match": '"stale"'})
            assert stale.status_code == 412, stale.text
        current = api.delete(f"/api/v1/members/{me}", headers={"If-Match": etag})
        assert current.json()["error"]["code"] == "removing_self"  # past If-Match, refused
    assert _members(cluster5, 1)[me]["membership"] == "active"


def test_a_node_leaves(cluster5: Cluster) -> None:
    leaver = max(cluster5.running())
    node = cluster5.nodes[leaver]
    members = _members(cluster5, leaver).values()
    others = sum(1 for m in members if m["membership"] == "active") - 1
    result = peer53(
        "leave", "--data-dir", str(node.data_dir), "--token", node.token, "--timeout", "20"
    )
    left = f"has left the cluster; {others} of {others} other members applied it"
    assert left in result.stderr, result.stderr
    assert _put(cluster5, leaver, "after-leaving", "192.0.2.1").json()["error"]["code"] == (
        "not_a_member"
    )

    def seen_left() -> bool:
        return all(
            _members(cluster5, i)[cluster5.ids[leaver]]["membership"] == "left"
            for i in cluster5.running()
            if i != leaver
        )

    poll(seen_left, "the departure did not reach the others")
    status = cluster5.status(0)
    assert {m["membership"] for m in status["members"] if m["id"] == cluster5.ids[leaver]} == {
        "left"
    }
    node.stop()


def test_the_last_member_cannot_go(tmp_path: Path) -> None:
    initialise(tmp_path / "solo", NodeConfig(name="solo"), "test")
    state = NodeState.open(tmp_path / "solo")
    me = state.identity.node_id
    for attempt in (
        lambda: removal_writes(state.replica, me, me, force=True),
        lambda: leave_writes(state.replica, me),
    ):
        with pytest.raises(MemberError, match="only active member"):
            attempt()
    with pytest.raises(LookupError):
        removal_writes(state.replica, "0" * 64, me, force=False)
    state.close()


def test_leave_needs_a_running_node(tmp_path: Path) -> None:
    result = peer53("leave", "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("peer53: error: ")
    assert "no running node" in result.stderr
