"""The servers under test, each started on 127.0.0.1 and a free port, serving the bench zone.

Every server runs in its own session (process group), so that Ctrl-C reaches only the bench,
which then stops the servers in order, and so that NSD, whose started process forks the
others, is stopped whole. Each starter is a context manager that stops what it started, also
when the bench is interrupted or fails.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx

from scripts.benchlib.workload import Workload

START_DEADLINE = 30.0
STOP_DEADLINE = 15.0
POLL = 0.05
LOG_TAIL = 3000

KNOT_CONF = """\
server:
    rundir: "{root}/run"
    listen: 127.0.0.1@{port}
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{root}/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{root}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {origin}
    file: zone
"""

NSD_CONF = """\
server:
    ip-address: 127.0.0.1@{port}
    server-count: 2
    rrl-ratelimit: 0
    username: ""
    chroot: ""
    zonesdir: "{root}"
    pidfile: "{root}/run/nsd.pid"
    xfrdfile: "{root}/run/xfrd.state"
    xfrdir: "{root}/run"
    zonelistfile: "{root}/run/zone.list"
    database: ""
    logfile: "{root}/nsd.log"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: {origin}
    zonefile: zone
"""


@dataclass(frozen=True)
class Server:
    name: str
    version: str
    port: int
    pid: int
    """Root of the process tree whose CPU time is counted."""


Starter = Callable[[Path, Workload], AbstractContextManager[Server]]


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1, for servers that cannot pick one."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def _program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise RuntimeError(f"{name} is not installed (./scripts/setup installs it)")
    return path


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL:] if log.exists() else ""


def _stop_group(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    """SIGTERM the server's process group and wait for all of it; SIGKILL what lingers."""
    group = process.pid
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(POLL)
    else:
        print(f"bench: {name} did not stop in {STOP_DEADLINE:g} s; killing it", file=sys.stderr)
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    status = process.wait(timeout=STOP_DEADLINE)
    if status != 0:
        print(f"bench: {name} exited with status {status}:\n{_tail(log)}", file=sys.stderr)


@contextmanager
def started_process(argv: list[str], name: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=sink, start_new_session=True)
    try:
        yield process
    finally:
        _stop_group(process, name, log)


def _check_running(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    if process.poll() is not None:
        raise RuntimeError(f"{name} exited with status {process.returncode}:\n{_tail(log)}")


def _serves(port: int, workload: Workload) -> bool:
    query = dns.message.make_query(workload.origin, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


def _wait_serving(
    process: subprocess.Popen[bytes], name: str, log: Path, port: int, workload: Workload
) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while not _serves(port, workload):
        _check_running(process, name, log)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{name} did not serve the zone in {START_DEADLINE:g} s:\n{_tail(log)}"
            )
        time.sleep(POLL)


def _version(argv: list[str], pattern: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = re.search(pattern, result.stdout + result.stderr)
    return found.group(1) if found else "unknown"


@dataclass(frozen=True)
class ReferenceServer:
    """A server that reads the zone from a file named in its config file (Knot, NSD)."""

    name: str
    program: str
    config: str
    flags: tuple[str, ...]
    version_flag: str
    version_pattern: str

    @contextmanager
    def __call__(self, workdir: Path, workload: Workload) -> Iterator[Server]:
        root = workdir / self.name
        for folder in (root / "run", root / "db"):
            folder.mkdir(parents=True)
        (root / "zone").write_text(workload.zone_text())
        port = free_port()
        config = root / f"{self.name}.conf"
        config.write_text(self.config.format(root=root, port=port, origin=workload.origin))
        binary = _program(self.program)
        log = root / f"{self.name}.out"
        with started_process([binary, "-c", str(config), *self.flags], self.name, log) as process:
            _wait_serving(process, self.name, log, port, workload)
            version = _version([binary, self.version_flag], self.version_pattern)
            yield Server(self.name, version, port, process.pid)


knot = ReferenceServer("knot", "knotd", KNOT_CONF, (), "-V", r"version (\S+)")
nsd = ReferenceServer("nsd", "nsd", NSD_CONF, ("-d",), "-v", r"NSD version (\S+)")


def _peer53_version() -> str:
    version = importlib.metadata.version("peer53")
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return f"{version} ({git.stdout.strip()})" if git.returncode == 0 else version


@contextmanager
def peer53(workdir: Path, workload: Workload) -> Iterator[Server]:
    """A node from ``peer53 init`` with its default settings; the zone goes in through the API
    as an operator would import it."""
    binary = str(Path(sys.executable).parent / "peer53")
    data = workdir / "peer53"
    listen = ["--dns", "127.0.0.1:0", "--api", "127.0.0.1:0", "--peer", "127.0.0.1:0"]
    init = subprocess.run(
        [binary, "init", "--data-dir", str(data), "--name", "bench", *listen],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise RuntimeError(f"peer53 init failed:\n{init.stderr}")
    token = init.stdout.strip().splitlines()[-1]
    log = workdir / "peer53.log"
    with started_process([binary, "run", "--data-dir", str(data)], "peer53", log) as process:
        bound = wait_listening(process, log, data / "listen.json")
        port = int(bound["dns"].rsplit(":", 1)[1])
        import_zone(f"http://{bound['api']}", token, workload)
        _wait_serving(process, "peer53", log, port, workload)
        yield Server("peer53", _peer53_version(), port, process.pid)


def wait_listening(process: subprocess.Popen[bytes], log: Path, listen: Path) -> dict[str, str]:
    deadline = time.monotonic() + START_DEADLINE
    while not listen.exists():
        _check_running(process, "peer53", log)
        if time.monotonic() > deadline:
            raise TimeoutError(f"peer53 did not start in {START_DEADLINE:g} s:\n{_tail(log)}")
        time.sleep(POLL)
    bound: dict[str, str] = json.loads(listen.read_text())
    return bound


def import_zone(api: str, token: str, workload: Workload) -> None:
    response = httpx.put(
        f"{api}/api/v1/zones/{workload.origin}",
        content=workload.zone_text(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/dns"},
        timeout=120.0,
    )
    if response.status_code != 201:
        raise RuntimeError(f"peer53 refused the zone ({response.status_code}): {response.text}")
    imported = response.json()["imported"]["records"]
    if imported != workload.records():
        raise RuntimeError(f"peer53 imported {imported} records of {workload.records()}")


STARTERS: dict[str, Starter] = {"knot": knot, "nsd": nsd, "peer53": peer53}
