"""Real multi-node clusters for integration tests, formed the way an operator forms one.

The first node is initialised; every other node joins with an invite made by
``peer53ctl invite create`` and ``peer53 join``. With ``proxied=True`` every peer link
runs through a ``LinkProxy`` (one per ordered pair of nodes, placed with the nodes'
``[dial_overrides]``), so a test can cut links and partition the cluster. Timers are
short so that tests wait little; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset

from tests.faultproxy import LinkProxy
from tests.nodeproc import BIN, NodeProcess, peer53

FAST_TIMERS = """
[peering]
heartbeat_ms = 200
dead_after_ms = 2000
backoff_min_ms = 50
backoff_max_ms = 400
write_hold_ms = 2000
repair_interval_ms = 1000
compact_interval_ms = 500
"""
CONVERGE_DEADLINE = 60.0


def node_id(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "peer53.db") as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'node_id'").fetchone()
    return str(row[0])


def ctl(node: NodeProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "peer53ctl"), *args],
        env=node.env(),
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def join_args(token: str, data_dir: Path, name: str) -> list[str]:
    listen = ["--dns", "127.0.0.1:0", "--api", "127.0.0.1:0", "--peer", "127.0.0.1:0"]
    return ["join", token, "--data-dir", str(data_dir), "--name", name, *listen]


class Cluster:
    def __init__(self, nodes: list[NodeProcess]) -> None:
        self.nodes = nodes
        self.ids = [node_id(n.data_dir) for n in nodes]
        self.proxies: dict[tuple[int, int], LinkProxy] = {}

    @classmethod
    def form(cls, base: Path, size: int, proxied: bool = False, timers: str = "") -> Cluster:
        """``timers``: more [peering] settings for every node, one per line."""
        first = NodeProcess.init(base / "n1", name="n1")
        fast_timers(first.data_dir, timers)
        first.start()
        cluster = cls([first])
        try:
            for index in range(2, size + 1):
                member = join(first, base / f"n{index}", f"n{index}", timers)
                cluster.nodes.append(member.start())
            cluster.ids = [node_id(n.data_dir) for n in cluster.nodes]
            if proxied:
                cluster._add_proxies()
            cluster.wait_converged()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _add_proxies(self) -> None:
        """Restart every node with its dials going through a proxy per ordered pair."""
        for node in self.nodes:
            node.stop()
        for i, node in enumerate(self.nodes):
            overrides = []
            for j, other in enumerate(self.nodes):
                if i != j:
                    proxy = LinkProxy(_peer_address_of(other))
                    self.proxies[(i, j)] = proxy
                    overrides.append(f'{self.ids[j]} = "127.0.0.1:{proxy.port}"')
            with (node.data_dir / "peer53.toml").open("a") as config:
                config.write("\n[dial_overrides]\n" + "\n".join(overrides) + "\n")
        for node in self.nodes:
            node.start()

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between nodes of different groups (indexes into ``nodes``)."""
        side = {i: g for g, members in enumerate(groups) for i in members}
        for (i, j), proxy in self.proxies.items():
            if side.get(i, -1) != side.get(j, -2):
                proxy.cut()
        self.wait_links(lambda i, j: side.get(i, -1) == side.get(j, -2))

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()
        self.wait_links(lambda i, j: True)

    def wait_links(self, expect_up: Callable[[int, int], bool]) -> None:
        """Until every node reports exactly the expected links up."""

        def ok() -> bool:
            for i, node in enumerate(self.nodes):
                if node.proc is None or node.proc.poll() is not None:
                    continue
                states = {m["id"]: m["state"] for m in self.status(i)["members"]}
                for j, other in enumerate(self.ids):
                    running = self.nodes[j].proc is not None and self.nodes[j].proc.poll() is None
                    if i != j and states.get(other) != (
                        "up" if running and expect_up(i, j) else "down"
                    ):
                        return False
            return True

        poll(ok, "links did not reach the expected state")

    def status(self, index: int) -> dict[str, Any]:
        with self.nodes[index].client() as api:
            return dict(api.get("/api/v1/cluster").raise_for_status().json())

    def running(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.proc is not None and n.proc.poll() is None]

    def wait_converged(self, deadline: float = CONVERGE_DEADLINE) -> list[dict[str, Any]]:
        """Until the running nodes have equal vectors and Merkle roots and all links up."""
        result: list[dict[str, Any]] = []

        def ok() -> bool:
            result[:] = [self.status(i) for i in self.running()]
            roots = {s["merkle_root"] for s in result}
            vectors = {json.dumps(s["clock"]["version_vector"], sort_keys=True) for s in result}
            links = all(
                m["state"] in ("self", "up")
                for s in result
                for m in s["members"]
                if self.ids.index(m["id"]) in self.running()
            )
            return len(roots) == 1 and len(vectors) == 1 and links

        poll(ok, "the cluster did not converge", deadline)
        return result

    def answers(self, index: int, names: Iterable[str], rdtype: str = "A") -> dict[str, Any]:
        """What node ``index`` serves for each name: rcode and sorted answer text."""
        out: dict[str, Any] = {}
        for name in names:
            response = self.nodes[index].query(dns.message.make_query(name, rdtype))
            rrsets = sorted(_rrset_text(r) for r in response.answer)
            out[name] = (response.rcode(), rrsets)
        return out

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()
        for proxy in self.proxies.values():
            proxy.close()


def _rrset_text(rrset: dns.rrset.RRset) -> str:
    return "\n".join(sorted(rrset.to_text().lower().splitlines()))


def fast_timers(data_dir: Path, timers: str = "") -> None:
    """Short peering timers, so that tests wait little; ``timers`` adds more."""
    with (data_dir / "peer53.toml").open("a") as config:
        config.write(FAST_TIMERS + timers + "\n")


def _peer_address_of(node: NodeProcess) -> Callable[[], tuple[str, int]]:
    def target() -> tuple[str, int]:
        bound = json.loads((node.data_dir / "listen.json").read_text())
        host, port = bound["peer"].rsplit(":", 1)
        return host, int(port)

    return target


def join(issuer: NodeProcess, data_dir: Path, name: str, timers: str = "") -> NodeProcess:
    """A new member: an invite from ``issuer`` through peer53ctl, then ``peer53 join``."""
    token = ctl(issuer, "invite", "create").stdout.strip()
    peer53(*join_args(token, data_dir, name))
    fast_timers(data_dir, timers)
    return NodeProcess(data_dir, issuer.token)


def poll(check: Callable[[], bool], what: str, deadline: float = CONVERGE_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.05)
