"""Merkle anti-entropy between real nodes: damage to a stopped node's state table is found
and repaired by one round, which moves only the damaged keys."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, poll

ZONE = "repair.test."
NAMES = [f"host{i}.{ZONE}" for i in range(300)]


@pytest.fixture(scope="module", autouse=True)
def zone(cluster5: Cluster) -> None:
    changes = [
        {
            "op": "put",
            "name": name,
            "type": "A",
            "ttl": 60,
            "records": [f"10.0.{i // 250}.{i % 250}"],
        }
        for i, name in enumerate(NAMES)
    ]
    with cluster5.nodes[0].client() as api:
        api.post("/api/v1/zones", json={"name": ZONE}).raise_for_status()
        for start in range(0, len(changes), 5):  # small events, as many writes make
            batch = {"changes": changes[start : start + 5]}
            api.patch(f"/api/v1/zones/{ZONE}/rrsets", json=batch).raise_for_status()
    cluster5.wait_converged()


def _zone_event_bytes(cluster: Cluster) -> int:
    """What sending every event of the test zone would cost."""
    path = cluster.nodes[0].data_dir / "peer53.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        wires = [bytes(w) for (w,) in db.execute("SELECT wire FROM events")]
    return sum(len(w) for w in wires if ZONE.encode() in w)


def _repair(status: dict[str, Any], peer: str) -> dict[str, Any]:
    member = next(m for m in status["members"] if m["id"] == peer)
    return dict(member["repair"])


def _damage(db_path: Path, rng: random.Random) -> set[str]:
    """Delete some state rows and alter others in ways a disk or a bug might."""
    with sqlite3.connect(db_path) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM state WHERE key LIKE 'rr %'")]
        victims = rng.sample(keys, 12)
        deleted, retyped, garbled, relabelled = (
            victims[:4],
            victims[4:8],
            victims[8:10],
            victims[10:],
        )
        db.executemany("DELETE FROM state WHERE key = ?", [(k,) for k in deleted])
        for key in retyped:
            db.execute(
                "UPDATE state SET value = ? WHERE key = ?",
                (json.dumps({"rdata": "192.0.2.99"}, separators=(",", ":")), key),
            )
        db.executemany(
            "UPDATE state SET value = '{not json' WHERE key = ?", [(k,) for k in garbled]
        )
        db.executemany(
            "UPDATE state SET event_id = ? WHERE key = ?", [("0" * 64, k) for k in relabelled]
        )
    return set(victims)


def test_damaged_state_is_repaired_by_one_round(cluster5: Cluster) -> None:
    cluster = cluster5
    victim = 2
    peers = [i for i in cluster.running() if i != victim]
    # Once no tombstones are left, none can be purged on one node and not yet on the
    # other while the round runs: the only differences are the damaged rows.
    poll(
        lambda: all(cluster.status(i)["storage"]["tombstones"] == 0 for i in cluster.running()),
        "tombstones were not purged",
    )
    cluster.nodes[victim].stop()
    damaged = _damage(cluster.nodes[victim].data_dir / "peer53.db", random.Random(7))
    before = {i: cluster.status(i) for i in peers}
    cluster.nodes[victim].start()
    assert cluster.status(victim)["merkle_root"] != before[peers[0]]["merkle_root"]

    def rounds_done(i: int) -> int:
        """Rounds the driver of pair (i, victim) ended with differences since the start."""
        me, other = cluster.ids[i], cluster.ids[victim]
        if me < other:
            now, then = _repair(cluster.status(i), other), _repair(before[i], other)
            return now["rounds"] - then["rounds"] if now["last_differences"] else 0
        stats = _repair(cluster.status(victim), me)
        return stats["rounds"] if stats["last_differences"] else 0

    try:
        poll(lambda: any(rounds_done(i) for i in peers), "no repair round ended")
    except TimeoutError as exc:
        seen = {i: cluster.status(i) for i in [*peers, victim]}
        pairs = {
            (i, j): _repair(seen[i], cluster.ids[j])
            for i in seen
            for j in seen
            if i != j and victim in (i, j)
        }
        raise TimeoutError(f"{exc}; repair per (node, peer): {pairs}") from exc
    status = cluster.status(victim)
    # Converged when the round ended, not later (the restart published a new address).
    assert status["merkle_root"] == cluster.status(peers[0])["merkle_root"]
    stats = [_repair(status, cluster.ids[i]) for i in peers]
    assert sum(s["keys_repaired"] for s in stats) == len(damaged)
    assert {s["keys_received"] for s in stats} <= {0, len(damaged)}
    assert max(s["keys_received"] for s in stats) == len(damaged)
    assert all(s["keys_sent"] == 0 for s in stats)
    # A fraction of what sending every event would cost.
    assert all(s["bytes_received"] < _zone_event_bytes(cluster) / 2 for s in stats), stats
    for i in peers:
        assert _repair(cluster.status(i), cluster.ids[victim])["keys_repaired"] == 0
    answers = [cluster.answers(i, NAMES) for i in cluster.running()]
    assert all(a == answers[0] for a in answers)
    with sqlite3.connect(cluster.nodes[victim].data_dir / "peer53.db") as db:
        repaired = dict(db.execute("SELECT key, value FROM state"))
    with sqlite3.connect(f"file:{cluster.nodes[0].data_dir / 'peer53.db'}?mode=ro", uri=True) as db:
        assert repaired == dict(db.execute("SELECT key, value FROM state"))
