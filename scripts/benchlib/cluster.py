"""A peer53 cluster for the replication figures, formed the way an operator forms one.

The first node comes from ``peer53 init``; every other node joins with an invite minted
through the first node's API and ``peer53 join``. Every node runs in its own session, like
the servers of the DNS bench, and is stopped when the context ends, also on errors and
Ctrl-C: all nodes get SIGTERM at once, then each is waited for (SIGKILL if it lingers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scripts.benchlib.servers import started_process, wait_listening

BINARY = Path(sys.executable).parent / "peer53"
LISTEN = ["--dns", "127.0.0.1:0", "--api", "127.0.0.1:0", "--peer", "127.0.0.1:0"]
# Short redial backoff only speeds up forming: once every link is up, nothing redials.
PEERING = """
[peering]
backoff_min_ms = 50
backoff_max_ms = 1000
"""
CONVERGE_DEADLINE = 60.0
POLL = 0.02
HTTP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Node:
    name: str
    api: str
    """Base URL of the HTTP API."""
    dns_port: int
    pid: int
    """Of the node's process, for its CPU time."""


def checked(response: httpx.Response, expected: int, what: str) -> dict[str, Any]:
    """The JSON body of an answer with the ``expected`` status; anything else ends the bench."""
    if response.status_code != expected:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[Node, ...]
    token: str
    """The admin token from ``peer53 init``, valid on every node."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_converged(self) -> None:
        """Until every node has the same version vector and Merkle root and sees every other
        member up."""
        end = time.monotonic() + CONVERGE_DEADLINE
        with ExitStack() as stack:
            apis = [
                stack.enter_context(
                    httpx.Client(base_url=node.api, headers=self.headers, timeout=HTTP_TIMEOUT)
                )
                for node in self.nodes
            ]
            while True:
                statuses = [
                    checked(api.get("/api/v1/cluster"), 200, "GET /api/v1/cluster") for api in apis
                ]
                if _converged(statuses, len(self.nodes)):
                    return
                if time.monotonic() > end:
                    raise TimeoutError(f"the {len(self.nodes)}-node cluster did not converge")
                time.sleep(POLL)


def _converged(statuses: list[dict[str, Any]], size: int) -> bool:
    vectors = {json.dumps(s["clock"]["version_vector"], sort_keys=True) for s in statuses}
    roots = {s["merkle_root"] for s in statuses}
    links = all(
        len(s["members"]) == size and all(m["state"] in ("self", "up") for m in s["members"])
        for s in statuses
    )
    return len(vectors) == 1 and len(roots) == 1 and links


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every node at once, so that they shut down side by side before each one's
    context waits for it (and kills it if it lingers)."""
    for process in processes:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)


def _finished(process: subprocess.Popen[str], what: str) -> str:
    try:
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        _reap(process)
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed ({process.returncode}):\n{stderr[-3000:]}")
    return stdout


def _command(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _invite(first: Node, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{first.api}/api/v1/invites"
    response = httpx.post(url, json={}, headers=headers, timeout=HTTP_TIMEOUT)
    return str(checked(response, 201, "POST /api/v1/invites")["token"])


def _start(
    stack: ExitStack, workdir: Path, names: list[str], processes: list[subprocess.Popen[bytes]]
) -> list[Node]:
    """Start the nodes side by side; each is stopped when ``stack`` closes."""
    for name in names:
        data = workdir / name
        with (data / "peer53.toml").open("a") as config:
            config.write(PEERING)
        argv = [str(BINARY), "run", "--data-dir", str(data)]
        log = workdir / f"{name}.log"
        processes.append(stack.enter_context(started_process(argv, f"peer53 {name}", log)))
    nodes = []
    for name, process in zip(names, processes[-len(names) :], strict=True):
        bound = wait_listening(process, workdir / f"{name}.log", workdir / name / "listen.json")
        dns_port = int(bound["dns"].rsplit(":", 1)[1])
        nodes.append(Node(name, f"http://{bound['api']}", dns_port, process.pid))
    return nodes


def _reap(process: subprocess.Popen[str]) -> None:
    """An ``init`` or ``join`` still running when forming fails is killed, not left behind."""
    if process.poll() is None:
        process.kill()
        process.communicate()


@contextmanager
def formed(workdir: Path, size: int) -> Iterator[Cluster]:
    """A converged cluster of ``size`` nodes under ``workdir``; stopped on leaving."""
    init = [str(BINARY), "init", "--data-dir", str(workdir / "n1"), "--name", "n1", *LISTEN]
    token = _finished(_command(init), "peer53 init").strip().splitlines()[-1]
    processes: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        try:
            first = _start(stack, workdir, ["n1"], processes)
            names = [f"n{index}" for index in range(2, size + 1)]
            joins = []
            for name in names:
                argv = [str(BINARY), "join", _invite(first[0], token), "--name", name]
                joins.append(_command([*argv, "--data-dir", str(workdir / name), *LISTEN]))
                stack.callback(_reap, joins[-1])
            for name, join in zip(names, joins, strict=True):
                _finished(join, f"peer53 join {name}")
            cluster = Cluster((*first, *_start(stack, workdir, names, processes)), token)
            cluster.wait_converged()
            yield cluster
        finally:
            _stop_all(processes)
