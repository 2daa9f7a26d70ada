"""Replication figures: how soon a write reaches every node of a peer53 cluster, and how many
record changes per second a cluster applies on every node.

Each cluster is formed by the bench itself (``cluster.py``) and loaded with the bench zone.

Propagation: writes at a steady rate, open loop (each starts on schedule, whether or not the
previous one was answered), each a PUT of one A RRset at a fresh name, round-robin over the
nodes. A write's latency runs from the writing node's 2xx until every node answers the new
address over DNS, as seen by a UDP poller in this process that keeps asking every node for
every write not yet seen there. It asks again sooner while a write is young (every
``ASK_EVERY`` at first, then a quarter of the write's age, at most ``ASK_EVERY_MAX``) and
at most ``MAX_ASK_RATE`` queries per second in all, so that slow writes do not turn the
poller into load on the nodes it measures; a latency is exact to within a quarter of
itself, and ``ASK_EVERY`` for the fastest.

Throughput: batches of record changes (PATCH .../rrsets) from several concurrent clients
spread over the nodes, timed from the first request until every node has the same version
vector and Merkle root, that is, has applied every batch.

Both report the CPU time the nodes used (all of them, per write or change) and how many
cores the nodes and this process (the clients and the poller) kept busy: on a machine where
they share few cores, that says whether a latency is the nodes' own or queueing for CPU.
"""

from __future__ import annotations

import io
import ipaddress
import itertools
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import httpx
import trio

from scripts.benchlib.cluster import HTTP_TIMEOUT, POLL, Cluster, checked, formed
from scripts.benchlib.cpu import process_tree_cpu_seconds
from scripts.benchlib.dnsperf import Latencies
from scripts.benchlib.http1 import Http1Client
from scripts.benchlib.servers import import_zone
from scripts.benchlib.workload import Workload

THROUGHPUT_NODES = 3
LATENCY_TARGET_MS = 50
THROUGHPUT_TARGET = 2000
ASK_EVERY = 0.005
"""Seconds between the poller's rounds: the finest resolution of the latencies. Each query
costs the node it asks CPU that the writes need (the first answer for a fresh name, before
and again after the write, is rendered anew), so the poller asks no finer than the target
needs."""
ASK_EVERY_MAX = 0.01
"""The longest wait before a node that lacked a write is asked again."""
MAX_ASK_RATE = 5000
"""Queries per second at most, so that a backlog of writes does not load the nodes measured."""
ASK_AGAIN_AFTER = 0.2
"""A UDP query unanswered this long is taken as lost and asked again."""
DRAIN_DEADLINE = 60.0
"""After the last write's answer, every node must serve every write within this."""
APPLY_DEADLINE = 120.0
TTL = 60
HEADER_BYTES = 12
QR = 0x80  # in the third header byte
RCODE_BITS = 0x0F  # in the fourth
MAX_BATCH = 10_000
"""The API's limit of changes per PATCH request."""
FORM_SECONDS = 12.0
"""Rough time to form and load one cluster, for the bench's estimate."""


@dataclass(frozen=True)
class Figure:
    key: str
    """Stable, for scripts reading the JSON: e.g. ``propagation.n3.p99``."""
    name: str
    value: float
    unit: str


def _to_stderr(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ReplicationPlan:
    sizes: tuple[int, ...] = (3, 5)
    """Cluster sizes whose propagation latency is measured."""
    writes: int = 500
    rate: float = 100.0
    """Writes per second of the propagation run."""
    changes: int = 20_000
    """Record changes of the throughput run, on 3 nodes; 0 skips it."""
    batch: int = 500
    clients: int = 6
    progress: Callable[[str], None] = field(default=_to_stderr, compare=False)

    def clusters(self) -> list[int]:
        """The cluster sizes to form, smallest first."""
        sizes = set(self.sizes) if self.writes else set()
        return sorted(sizes | ({THROUGHPUT_NODES} if self.changes else set()))

    def estimated_seconds(self) -> float:
        """Rough, for the bench's announced duration."""
        propagation = len(self.sizes) * self.writes / self.rate if self.writes else 0.0
        throughput = self.changes / THROUGHPUT_TARGET
        return len(self.clusters()) * FORM_SECONDS + propagation + throughput


DEFAULT = ReplicationPlan()
NONE = ReplicationPlan(sizes=(), writes=0, changes=0)
PLAN: ContextVar[ReplicationPlan] = ContextVar("replication_plan", default=DEFAULT)
"""What ``measure_replication`` measures; the bench's command line sets it."""


def measure_replication(workdir: Path, workload: Workload) -> list[Figure]:
    return measure(workdir, workload, PLAN.get())


def measure(workdir: Path, workload: Workload, plan: ReplicationPlan) -> list[Figure]:
    figures: list[Figure] = []
    for size in plan.clusters():
        plan.progress(f"replication: forming a {size}-node cluster")
        root = workdir / f"cluster-{size}"
        root.mkdir()
        with formed(root, size) as cluster:
            import_zone(cluster.nodes[0].api, cluster.token, workload)
            cluster.wait_converged()
            plan.progress(f"replication: {size} nodes up, converged, serving {workload.origin}")
            if size in plan.sizes and plan.writes:
                what = f"{plan.writes} writes at {plan.rate:g}/s to {size} nodes"
                figures += _step(plan, what, partial(_propagation, cluster, workload.origin, plan))
            if size == THROUGHPUT_NODES and plan.changes:
                what = (
                    f"{plan.changes:,} record changes in batches of {plan.batch} "
                    f"from {plan.clients} clients to {size} nodes"
                )
                figures += _step(plan, what, partial(_throughput, cluster, workload.origin, plan))
    return figures


def _step(
    plan: ReplicationPlan, what: str, main: Callable[[], Awaitable[list[Figure]]]
) -> list[Figure]:
    plan.progress(f"replication: {what}")
    found = _in_trio(main)
    described = "; ".join(f"{figure.name} {figure.value:g} {figure.unit}" for figure in found)
    plan.progress(f"replication: {described}")
    return found


def _in_trio(main: Callable[[], Awaitable[list[Figure]]]) -> list[Figure]:
    """Run ``main`` under trio. SIGINT and SIGTERM end it and are then raised again for the
    handler they would have reached (the bench's own: stop everything and exit); an error
    in a task leaves as itself, not wrapped in an exception group."""
    received: list[int] = []
    found: list[Figure] = []

    async def guarded() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for signum in signals:
                        received.append(signum)
                        nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                found.extend(await main())
                nursery.cancel_scope.cancel()

    try:
        trio.run(guarded)
    except BaseExceptionGroup as group:
        raise _first_leaf(group) from None
    if received:
        signal.raise_signal(received[0])
        raise KeyboardInterrupt
    return found


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


@dataclass(frozen=True)
class _CpuUse:
    """CPU seconds of the nodes and of this process, at one moment."""

    nodes: float
    bench: float
    at: float

    @classmethod
    def take(cls, cluster: Cluster) -> _CpuUse:
        nodes = sum(process_tree_cpu_seconds(node.pid) for node in cluster.nodes)
        return cls(nodes, time.process_time(), trio.current_time())

    def figures(self, since: _CpuUse, key: str, label: str, per: str, count: int) -> list[Figure]:
        """Node CPU per unit of work (µs), and the cores the nodes and the bench kept busy."""
        wall = max(self.at - since.at, 1e-9)
        nodes = self.nodes - since.nodes
        return [
            Figure(
                f"{key}.node_cpu_per_{per}",
                f"{label}, CPU of all nodes per {per}",
                round(nodes / max(count, 1) * 1e6),
                "µs",
            ),
            Figure(
                f"{key}.node_cores",
                f"{label}, cores the nodes kept busy",
                round(nodes / wall, 3),
                "cores",
            ),
            Figure(
                f"{key}.bench_cores",
                f"{label}, cores the bench's clients and poller kept busy",
                round((self.bench - since.bench) / wall, 3),
                "cores",
            ),
        ]


def _milliseconds(seconds: list[float], fraction: float) -> float:
    return round(Latencies(tuple(seconds), 0).percentile(fraction) * 1000, 2)


@dataclass(frozen=True)
class _Expected:
    """What serves one write, made before the timed run so that the run spends no CPU on
    it."""

    name: dns.name.Name
    address: str
    packed: bytes
    """``address`` in wire form."""
    query: bytes
    """The A query for ``name`` in wire form, ID 0."""
    answers: tuple[bytes, ...]
    """The answer that serves the write, as the first record after the question: its A
    record in wire form, the owner a pointer to the question's name or written out."""

    @classmethod
    def make(cls, name: dns.name.Name, address: str) -> _Expected:
        query = dns.message.make_query(name, dns.rdatatype.A)
        query.id = 0
        packed = ipaddress.IPv4Address(address).packed
        record = dns.rrset.from_text(name, TTL, dns.rdataclass.IN, dns.rdatatype.A, address)
        answers = tuple(_rendered(record, compress) for compress in ({name: HEADER_BYTES}, None))
        return cls(name, address, packed, query.to_wire(), answers)


@dataclass
class _Write:
    """A write answered by its node and not yet served by every node."""

    expected: _Expected
    acked: float
    waiting: set[int]
    """Indexes of the nodes that have not answered with ``address`` yet."""
    asking: set[int] = field(default_factory=set)
    """Indexes of the nodes with a query in flight."""
    next_ask: dict[int, float] = field(default_factory=dict)
    """Node index -> when to ask it again, after it answered without the write."""


class _Poller:
    """Asks every node over UDP for every write in ``writes`` until each node answers it
    with the new address: at most one query in flight per write and node, a round every
    ``ASK_EVERY`` seconds."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.writes: dict[int, _Write] = {}
        self.asked: dict[int, tuple[int, int, float]] = {}
        """Query ID: write, node, when sent."""
        self.ids = itertools.cycle(range(65536))
        self.latencies: list[float] = []
        self.sent = 0

    def add(self, index: int, expected: _Expected, acked: float) -> None:
        self.writes[index] = _Write(expected, acked, set(range(len(self.ports))))

    async def run(self, all_answered: trio.Event) -> None:
        """Until every write is served everywhere, once ``all_answered`` is set."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(("127.0.0.1", 0))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive, sock)
                await self._ask(sock, all_answered)
                nursery.cancel_scope.cancel()

    async def _ask(self, sock: socket.socket, all_answered: trio.Event) -> None:
        drained_by = None
        while not (all_answered.is_set() and not self.writes):
            now = trio.current_time()
            if all_answered.is_set():
                drained_by = drained_by or now + DRAIN_DEADLINE
                if now > drained_by:
                    raise TimeoutError(
                        f"{len(self.writes)} writes not served by every node "
                        f"{DRAIN_DEADLINE:g} s after the last write, e.g. "
                        f"{next(iter(self.writes.values())).expected.name}"
                    )
            for query_id, (index, node, sent) in list(self.asked.items()):
                if now - sent > ASK_AGAIN_AFTER:
                    del self.asked[query_id]
                    self.writes[index].asking.discard(node)
            count = 0
            for index, write in self.writes.items():
                for node in write.waiting - write.asking:
                    if now < write.next_ask.get(node, 0.0):
                        continue
                    count += 1
                    self.sent += 1
                    query_id = next(self.ids)
                    self.asked[query_id] = (index, node, now)
                    write.asking.add(node)
                    # Loopback UDP does not block: no checkpoint per datagram.
                    wire = query_id.to_bytes(2, "big") + write.expected.query[2:]
                    sock.sendto(wire, ("127.0.0.1", self.ports[node]))
            await trio.sleep(max(ASK_EVERY, count / MAX_ASK_RATE))

    async def _receive(self, sock: socket.socket) -> None:
        while True:
            await trio.lowlevel.wait_readable(sock)
            while True:
                try:
                    data, source = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                self._answered(data, source[1], trio.current_time())

    def _answered(self, data: bytes, port: int, now: float) -> None:
        asked = self.asked.pop(int.from_bytes(data[:2], "big"), None)
        if asked is None:
            return
        index, node, _ = asked
        write = self.writes.get(index)
        if write is None:
            return
        write.asking.discard(node)
        if port == self.ports[node] and _serves(data, write.expected):
            write.waiting.discard(node)
            if not write.waiting:
                self.latencies.append(now - write.acked)
                del self.writes[index]
        else:
            age = now - write.acked
            write.next_ask[node] = now + min(ASK_EVERY_MAX, max(ASK_EVERY, age / 4))


def _rendered(rrset: dns.rrset.RRset, compress: dict[dns.name.Name, int] | None) -> bytes:
    wire = io.BytesIO()
    rrset.to_wire(wire, compress)
    return wire.getvalue()


def _serves(data: bytes, write: _Expected) -> bool:
    # Until the write arrives a node has no answer (ANCOUNT 0), or one without the new
    # address (a wildcard's): nothing to parse.
    if len(data) < HEADER_BYTES or data[6:8] == b"\0\0" or write.packed not in data:
        return False
    # The usual answer, checked without parsing it (a parse costs the bench more than the
    # rest of a write): a NOERROR response to the query, its question, then the record.
    question_end = len(write.query)
    if (
        data[2] & QR
        and not data[3] & RCODE_BITS
        and data.startswith(write.query[HEADER_BYTES:], HEADER_BYTES)
        and any(data.startswith(answer, question_end) for answer in write.answers)
    ):
        return True
    try:
        response = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return False
    return (
        response.rcode() == dns.rcode.NOERROR
        and bool(response.question)
        and response.question[0].name == write.name
        and any(
            rrset.rdtype == dns.rdatatype.A
            and any(rdata.address == write.address for rdata in rrset)
            for rrset in response.answer
        )
    )


async def _clients(stack: AsyncExitStack, cluster: Cluster) -> list[httpx.AsyncClient]:
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(base_url=node.api, headers=cluster.headers, timeout=HTTP_TIMEOUT)
        )
        for node in cluster.nodes
    ]


async def _propagation(
    cluster: Cluster, origin: dns.name.Name, plan: ReplicationPlan
) -> list[Figure]:
    size = len(cluster.nodes)
    poller = _Poller([node.dns_port for node in cluster.nodes])
    issued: list[float] = []

    names = [dns.name.from_text(f"rp-{index}", origin) for index in range(plan.writes)]
    expected = [
        _Expected.make(name, str(ipaddress.IPv4Address(0x0A000000 + index)))
        for index, name in enumerate(names)
    ]

    async def write(api: Http1Client, index: int) -> None:
        path = f"/api/v1/zones/{origin}/rrsets/{names[index]}/A"
        with trio.fail_after(HTTP_TIMEOUT):
            status, body = await api.put_json(
                path, {"ttl": TTL, "records": [expected[index].address]}
            )
        acked = trio.current_time()
        if status != 201:
            raise RuntimeError(f"PUT {path}: HTTP {status}: {body[:500]!r}")
        poller.add(index, expected[index], acked)

    async with AsyncExitStack() as stack:
        apis = [Http1Client(node.api, cluster.headers) for node in cluster.nodes]
        for api in apis:
            stack.push_async_callback(api.aclose)
        cpu_before = _CpuUse.take(cluster)
        all_answered = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poller.run, all_answered)
            async with trio.open_nursery() as writes:
                start = trio.current_time()
                for index in range(plan.writes):
                    await trio.sleep_until(start + index / plan.rate)
                    issued.append(trio.current_time())
                    writes.start_soon(write, apis[index % size], index)
            all_answered.set()
            waiting = len(poller.writes)
            plan.progress(f"replication: every write answered, {waiting} not yet served everywhere")
        cpu = _CpuUse.take(cluster)
    seconds = poller.latencies
    # Over the schedule's span: a late start cannot make the rate look higher than asked.
    rate = (len(issued) - 1) / (issued[-1] - start) if len(issued) > 1 else 0.0
    key, label = f"propagation.n{size}", f"propagation to every node over DNS, {size} nodes"
    return [
        Figure(f"{key}.p50", f"{label}, p50", _milliseconds(seconds, 0.5), "ms"),
        Figure(
            f"{key}.p99",
            f"{label}, p99 (target < {LATENCY_TARGET_MS} ms)",
            _milliseconds(seconds, 0.99),
            "ms",
        ),
        Figure(f"{key}.max", f"{label}, max", _milliseconds(seconds, 1.0), "ms"),
        Figure(f"{key}.writes", f"{label}, writes measured", len(seconds), "writes"),
        Figure(f"{key}.rate", f"{label}, write rate achieved", round(rate, 1), "writes/s"),
        Figure(
            f"{key}.queries_per_write",
            f"{label}, the poller's queries per write and node",
            round(poller.sent / max(len(seconds) * size, 1), 1),
            "queries",
        ),
        *cpu.figures(cpu_before, key, label, "write", len(seconds)),
    ]


@dataclass(frozen=True)
class _Applied:
    """Every node's state once they all agree."""

    at: float
    events: int
    """Sum of the version vector."""
    records: list[int]
    """The zone's record count on each node."""


async def _applied(apis: list[httpx.AsyncClient], origin: dns.name.Name) -> _Applied:
    """Polls every node until all have the same version vector and Merkle root."""
    deadline = trio.current_time() + APPLY_DEADLINE
    while True:
        statuses = [
            checked(await api.get("/api/v1/cluster"), 200, "GET /api/v1/cluster") for api in apis
        ]
        at = trio.current_time()
        vectors = [status["clock"]["version_vector"] for status in statuses]
        roots = {status["merkle_root"] for status in statuses}
        if len(roots) == 1 and all(vector == vectors[0] for vector in vectors):
            path = f"/api/v1/zones/{origin}"
            zones = [checked(await api.get(path), 200, f"GET {path}") for api in apis]
            events = sum(vectors[0].values())
            return _Applied(at, events, [int(zone["records"]) for zone in zones])
        if at > deadline:
            raise TimeoutError(f"the nodes did not agree within {APPLY_DEADLINE:g} s")
        await trio.sleep(POLL)


def _batches(plan: ReplicationPlan) -> Iterator[list[dict[str, Any]]]:
    for first in range(0, plan.changes, plan.batch):
        yield [
            {
                "op": "put",
                "name": f"rt-{index}",
                "type": "A",
                "ttl": TTL,
                "records": [str(ipaddress.IPv4Address(0x0B000000 + index))],
            }
            for index in range(first, min(first + plan.batch, plan.changes))
        ]


async def _throughput(
    cluster: Cluster, origin: dns.name.Name, plan: ReplicationPlan
) -> list[Figure]:
    size = len(cluster.nodes)
    path = f"/api/v1/zones/{origin}/rrsets"
    batches = list(_batches(plan))
    queue = iter(batches)
    sent = 0

    async def client(api: httpx.AsyncClient) -> None:
        nonlocal sent
        for changes in queue:
            body = checked(await api.patch(path, json={"changes": changes}), 200, f"PATCH {path}")
            sent += int(body["changes"])

    async with AsyncExitStack() as stack:
        apis = await _clients(stack, cluster)
        before = await _applied(apis, origin)
        cpu_before = _CpuUse.take(cluster)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for number in range(plan.clients):
                nursery.start_soon(client, apis[number % size])
        accepted = trio.current_time() - start
        plan.progress(f"replication: {sent:,} changes accepted in {accepted:.1f} s")
        after = await _applied(apis, origin)
        cpu = _CpuUse.take(cluster)
    seconds = after.at - start
    applied = min(a - b for a, b in zip(after.records, before.records, strict=True))
    key, label = f"throughput.n{size}", f"write throughput, {size} nodes"
    return [
        Figure(
            f"{key}.applied_per_second",
            f"{label}, applied on every node (target ≥ {THROUGHPUT_TARGET:,})",
            round(sent / seconds, 1),
            "changes/s",
        ),
        Figure(
            f"{key}.accepted_per_second",
            f"{label}, accepted by the API",
            round(sent / accepted, 1),
            "changes/s",
        ),
        Figure(f"{key}.sent", f"{label}, record changes sent", sent, "changes"),
        Figure(
            f"{key}.applied", f"{label}, record changes applied on every node", applied, "changes"
        ),
        Figure(
            f"{key}.events",
            f"{label}, events replicated ({plan.batch} changes per request, "
            f"{plan.clients} concurrent clients)",
            after.events - before.events,
            "events",
        ),
        Figure(
            f"{key}.seconds",
            f"{label}, time until every node applied every change",
            round(seconds, 2),
            "s",
        ),
        *cpu.figures(cpu_before, key, label, "change", sent),
    ]
