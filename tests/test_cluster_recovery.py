"""Five real nodes (the shared ``cluster5``): concurrent writes everywhere, a SIGKILLed
node, a node restored from an older copy of its data directory, and a node that joins
late."""

from __future__ import annotations

import json
import random
import shutil
import signal
import threading
from pathlib import Path

import pytest

from tests.cluster import Cluster, join, node_id, poll

ZONE = "five.test."


@pytest.fixture(scope="module", autouse=True)
def zone(cluster5: Cluster) -> None:
    with cluster5.nodes[0].client() as api:
        api.post("/api/v1/zones", json={"name": ZONE, "ns": [f"ns1.{ZONE}"]}).raise_for_status()


def _put(cluster: Cluster, node: int, name: str, address: str) -> None:
    with cluster.nodes[node].client() as api:
        api.put(
            f"/api/v1/zones/{ZONE}/rrsets/{name}/A", json={"ttl": 60, "records": [address]}
        ).raise_for_status()


def _names(cluster: Cluster) -> list[str]:
    with cluster.nodes[0].client() as api:
        rrsets = api.get(f"/api/v1/zones/{ZONE}/rrsets").json()["rrsets"]
    return sorted({r["name"] for r in rrsets if r["type"] == "A"})


def _identical(cluster: Cluster) -> dict[str, object]:
    statuses = cluster.wait_converged()
    assert len({s["merkle_root"] for s in statuses}) == 1
    assert all(not s["rejected_events"] for s in statuses), [s["rejected_events"] for s in statuses]
    names = _names(cluster)
    answers = [cluster.answers(i, names) for i in cluster.running()]
    assert all(a == answers[0] for a in answers)
    return answers[0]


def test_concurrent_writes_on_five_nodes_converge(cluster5: Cluster) -> None:
    def writer(index: int) -> None:
        rng = random.Random(index)
        for step in range(20):
            name = f"shared{rng.randrange(5)}.{ZONE}" if step % 2 else f"n{index}-{step}.{ZONE}"
            _put(cluster5, index, name, f"198.51.100.{index * 40 + step}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    answers = _identical(cluster5)
    assert len(answers) == 5 * 10 + 5
    assert all(rcode == 0 and rrsets for rcode, rrsets in answers.values())  # type: ignore[misc]


def test_a_killed_node_catches_up(cluster5: Cluster) -> None:
    victim = cluster5.nodes[3]
    victim.kill9()
    for step in range(30):
        _put(cluster5, step % 3, f"while-dead{step}.{ZONE}", f"203.0.113.{step}")
    victim.start()
    answers = _identical(cluster5)
    assert answers[f"while-dead29.{ZONE}"] == (0, [f"while-dead29.{ZONE} 60 in a 203.0.113.29"])


def test_restored_node_keeps_its_writes_and_never_reuses_a_sequence(
    cluster5: Cluster, tmp_path: Path
) -> None:
    node = cluster5.nodes[4]
    me = cluster5.ids[4]
    assert node.stop() == 0
    backup = tmp_path / "backup"
    shutil.copytree(node.data_dir, backup)
    node.start()
    for step in range(10):
        _put(cluster5, 4, f"after-backup{step}.{ZONE}", f"192.0.2.{step}")
    cluster5.wait_converged()
    high = cluster5.status(0)["clock"]["version_vector"][me]
    assert node.stop() == 0
    shutil.rmtree(node.data_dir)
    shutil.copytree(backup, node.data_dir)
    node.start()
    _put(cluster5, 4, f"after-restore.{ZONE}", "192.0.2.99")  # held until its events are back
    answers = _identical(cluster5)
    assert cluster5.status(4)["clock"]["version_vector"][me] > high
    for step in range(10):
        assert answers[f"after-backup{step}.{ZONE}"][0] == 0  # type: ignore[index]
    assert answers[f"after-restore.{ZONE}"] == (0, [f"after-restore.{ZONE} 60 in a 192.0.2.99"])


def test_a_late_joiner_gets_everything(cluster5: Cluster, tmp_path: Path) -> None:
    before = _identical(cluster5)
    late = join(cluster5.nodes[1], tmp_path / "n6", "n6").start()
    cluster5.nodes.append(late)
    cluster5.ids.append(node_id(late.data_dir))
    assert _identical(cluster5) == before
    assert len(cluster5.status(5)["members"]) == 6


def test_a_stalled_node_blocks_nobody_and_catches_up(cluster5: Cluster) -> None:
    """SIGSTOP: the node's sockets stay open but it reads nothing, so its links fill up.
    Writes and replication among the others go on; once it runs again it catches up."""
    stalled = cluster5.nodes[2]
    assert stalled.proc is not None
    stalled.proc.send_signal(signal.SIGSTOP)
    try:
        for step in range(100):
            _put(cluster5, step % 2, f"stalled{step}.{ZONE}", f"192.0.2.{step}")
        others = [0, 1, 3, 4]

        def others_agree() -> bool:
            vectors = {
                json.dumps(cluster5.status(i)["clock"]["version_vector"], sort_keys=True)
                for i in others
            }
            return len(vectors) == 1

        poll(others_agree, "the running nodes did not converge while one was stopped")
        for i in others:
            answer = cluster5.answers(i, [f"stalled99.{ZONE}"])
            assert answer[f"stalled99.{ZONE}"] == (0, [f"stalled99.{ZONE} 60 in a 192.0.2.99"])
    finally:
        stalled.proc.send_signal(signal.SIGCONT)
    _identical(cluster5)
