"""Replication between real node processes: a 3-node cluster formed with invites.

The cluster is shared (``cluster3``); each test uses its own zone. Partitions are made by
cutting the proxies on the peer links, so writes on both sides are truly concurrent
(neither writer has seen the other's write).
"""

from __future__ import annotations

import random
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import httpx

from tests.cluster import Cluster, ctl, poll

ALL = (0, 1, 2)


@contextmanager
def partitioned(cluster: Cluster, *groups: tuple[int, ...]) -> Iterator[None]:
    cluster.partition(*groups)
    try:
        yield
    finally:
        cluster.heal()


def _zone(cluster: Cluster, zone: str, node: int = 0) -> None:
    with cluster.nodes[node].client() as api:
        api.post("/api/v1/zones", json={"name": zone, "ns": [f"ns1.{zone}"]}).raise_for_status()


def _put(cluster: Cluster, node: int, zone: str, name: str, rtype: str, *records: str) -> None:
    with cluster.nodes[node].client() as api:
        api.put(
            f"/api/v1/zones/{zone}/rrsets/{name}/{rtype}",
            json={"ttl": 60, "records": list(records)},
        ).raise_for_status()


def _same_everywhere(cluster: Cluster, names: list[str], rdtype: str = "A") -> dict[str, object]:
    answers = [cluster.answers(i, names, rdtype) for i in ALL]
    assert answers[0] == answers[1] == answers[2]
    return answers[0]


def test_formed_by_invites_and_every_write_is_served_everywhere(cluster3: Cluster) -> None:
    statuses = cluster3.wait_converged()
    for index, status in enumerate(statuses):
        states = {m["id"]: m["state"] for m in status["members"]}
        assert states == {
            node: "self" if node == cluster3.ids[index] else "up" for node in cluster3.ids
        }
        assert all(m["membership"] == "active" and m["last_seen"] for m in status["members"])
    used = [i for i in statuses[2]["invites"] if i["status"] == "used"]
    assert sorted(i["used_by"] for i in used) == sorted(cluster3.ids[1:])
    _zone(cluster3, "formed.test.")
    for writer in ALL:
        _put(cluster3, writer, "formed.test.", f"w{writer}.formed.test.", "A", f"192.0.2.{writer}")
    cluster3.wait_converged()
    names = [f"w{w}.formed.test." for w in ALL]
    answers = _same_everywhere(cluster3, names)
    assert answers == {n: (0, [f"{n} 60 in a 192.0.2.{i}"]) for i, n in enumerate(names)}
    dig = subprocess.run(
        ["dig", "+short", "@127.0.0.1", "-p", str(cluster3.nodes[2].dns_port), names[0], "A"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert dig.stdout.strip() == "192.0.2.0"


def test_concurrent_writes_on_every_node_converge(cluster3: Cluster) -> None:
    zone = "busy.test."
    _zone(cluster3, zone)
    cluster3.wait_converged()
    names = [f"same{i}.{zone}" for i in range(4)]

    def writer(index: int) -> None:
        rng = random.Random(index)
        with cluster3.nodes[index].client() as api:
            for step in range(25):
                name = rng.choice(names) if step % 2 else f"own{index}-{step}.{zone}"
                api.put(
                    f"/api/v1/zones/{zone}/rrsets/{name}/A",
                    json={"ttl": 60, "records": [f"192.0.2.{index * 50 + step}"]},
                ).raise_for_status()

    threads = [threading.Thread(target=writer, args=(i,)) for i in ALL]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = cluster3.wait_converged()
    assert len({s["merkle_root"] for s in statuses}) == 1
    every = names + [f"own{i}-{s}.{zone}" for i in ALL for s in range(0, 25, 2)]
    answers = _same_everywhere(cluster3, every)
    assert all(rcode == 0 and rrsets for rcode, rrsets in answers.values())  # type: ignore[misc]
    with cluster3.nodes[0].client() as api:
        serials = {
            cluster3.nodes[i].query(dns.message.make_query(zone, "SOA")).answer[0][0].serial
            for i in ALL
        }
        assert len(serials) == 1 and api.get(f"/api/v1/zones/{zone}").json()["serial"] in serials


def test_concurrent_adds_to_one_rrset_both_survive(cluster3: Cluster) -> None:
    zone = "adds.test."
    _zone(cluster3, zone)
    cluster3.wait_converged()
    with partitioned(cluster3, (0,), (1,), (2,)):
        for node in ALL:
            _put(cluster3, node, zone, f"www.{zone}", "A", f"192.0.2.{node + 1}")
    cluster3.wait_converged()
    answers = _same_everywhere(cluster3, [f"www.{zone}"])
    rcode, rrsets = answers[f"www.{zone}"]  # type: ignore[misc]
    assert rcode == 0
    assert rrsets == ["\n".join(f"www.{zone} 60 in a 192.0.2.{n}" for n in (1, 2, 3))]
    status = cluster3.status(0)
    assert status["conflicts"]["concurrent_writes"] >= 2


def test_cname_against_a_resolves_the_same_everywhere(cluster3: Cluster) -> None:
    zone = "clash.test."
    _zone(cluster3, zone)
    cluster3.wait_converged()
    with partitioned(cluster3, (0,), (1, 2)):
        _put(cluster3, 0, zone, f"x.{zone}", "CNAME", f"target.{zone}")
        _put(cluster3, 1, zone, f"x.{zone}", "A", "192.0.2.7")
    cluster3.wait_converged()
    a = _same_everywhere(cluster3, [f"x.{zone}"], "A")
    cname = _same_everywhere(cluster3, [f"x.{zone}"], "CNAME")
    # normalise: a CNAME beside other data is not served; the other data is
    assert a[f"x.{zone}"] == (0, [f"x.{zone} 60 in a 192.0.2.7"])
    assert cname[f"x.{zone}"] == (0, [])


def test_zone_delete_and_recreate_leaves_no_old_records(cluster3: Cluster) -> None:
    zone = "again.test."
    _zone(cluster3, zone)
    _put(cluster3, 0, zone, f"old.{zone}", "A", "192.0.2.1")
    cluster3.wait_converged()
    with partitioned(cluster3, (0,), (1, 2)):
        with cluster3.nodes[0].client() as api:
            api.delete(f"/api/v1/zones/{zone}").raise_for_status()
        _zone(cluster3, zone, node=0)
        # concurrently, on the other side, a record goes into the old generation
        _put(cluster3, 1, zone, f"late.{zone}", "A", "192.0.2.2")
    cluster3.wait_converged()
    answers = _same_everywhere(cluster3, [f"old.{zone}", f"late.{zone}"])
    assert answers == {f"old.{zone}": (3, []), f"late.{zone}": (3, [])}
    with cluster3.nodes[2].client() as api:
        api.delete(f"/api/v1/zones/{zone}").raise_for_status()
    _zone(cluster3, zone, node=1)
    cluster3.wait_converged()
    assert _same_everywhere(cluster3, [f"old.{zone}"]) == {f"old.{zone}": (3, [])}


def test_wait_reports_how_many_nodes_applied(cluster3: Cluster) -> None:
    zone = "wait.test."
    _zone(cluster3, zone)
    cluster3.wait_converged()
    url = f"/api/v1/zones/{zone}/rrsets/w.{zone}/A"
    body = {"ttl": 60, "records": ["192.0.2.1"]}
    with cluster3.nodes[0].client() as api:
        done = api.put(url, params={"wait": 3}, json=body)
        assert done.status_code == 201 and done.json()["applied"] == 3
        with partitioned(cluster3, (0, 1), (2,)):
            partial = api.put(url, params={"wait": 3, "timeout": 0.5}, json=body)
            assert partial.status_code == 200
            assert (partial.json()["applied"], partial.json()["requested"]) == (2, 3)
            status = cluster3.status(0)
            lagging = {m["id"]: m for m in status["members"]}[cluster3.ids[2]]
            assert lagging["state"] == "down" and lagging["lag"]["events"] >= 1
            assert lagging["lag"]["seconds"] >= 0
            metrics = api.get("/metrics").text
            assert f'peer53_member_up{{id="{cluster3.ids[2]}",name="n3"}} 0.0' in metrics
            line = f'peer53_member_lag_events{{id="{cluster3.ids[2]}",name="n3"}}'
            assert f"{line} {float(lagging['lag']['events'])}" in metrics
        bad = api.put(url, params={"wait": 4}, json=body)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "wait"
        gone = api.delete(url, params={"wait": 3})
        assert gone.status_code == 200 and gone.json() == {"applied": 3, "requested": 3}
    status = cluster3.wait_converged()[0]
    assert all(m["lag"] == {"events": 0, "seconds": 0.0} for m in status["members"])


def test_tokens_and_invites_replicate(cluster3: Cluster) -> None:
    with cluster3.nodes[0].client() as api:
        made = api.post("/api/v1/tokens", json={"name": "r", "role": "reader"}).json()
    cluster3.wait_converged()
    for node in cluster3.nodes:
        with httpx.Client(base_url=node.api_url, timeout=10) as plain:
            auth = {"Authorization": f"Bearer {made['token']}"}
            assert plain.get("/api/v1/zones", headers=auth).status_code == 200
    with cluster3.nodes[1].client() as api:
        api.delete(f"/api/v1/tokens/{made['id']}").raise_for_status()
    cluster3.wait_converged()
    for node in cluster3.nodes:
        with httpx.Client(base_url=node.api_url, timeout=10) as plain:
            auth = {"Authorization": f"Bearer {made['token']}"}
            assert plain.get("/api/v1/zones", headers=auth).status_code == 401
    token = ctl(cluster3.nodes[2], "invite", "create").stdout.strip()
    assert token.count(".") == 2
    cluster3.wait_converged()
    listed = ctl(cluster3.nodes[0], "--json", "invite", "list")
    poll(lambda: '"open"' in listed.stdout, "the invite did not replicate")
