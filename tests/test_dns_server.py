"""DNS transport behaviour of a real node: RFC 7766 TCP, UDP truncation, hostile packets."""

import random
import socket
import struct
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.conftest import SHARED_TCP_IDLE_TIMEOUT
from tests.nodeproc import NodeProcess

FUZZ_SEED = 53
FUZZ_PACKETS = 3000


@pytest.fixture(scope="module")
def zone(node: NodeProcess) -> str:
    """A zone with a large RRset, to force truncation over UDP."""
    with node.client() as c:
        assert c.post("/api/v1/zones", json={"name": "wire.test"}).status_code == 201
        big = {"ttl": 60, "records": [f"192.0.2.{i}" for i in range(1, 61)]}
        assert c.put("/api/v1/zones/wire.test/rrsets/big/A", json=big).status_code == 201
        one = {"ttl": 60, "records": ["192.0.2.1"]}
        assert c.put("/api/v1/zones/wire.test/rrsets/www/A", json=one).status_code == 201
    return "wire.test."


def _tcp(node: NodeProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.dns_port), timeout=10)
    return sock


def _read_message(sock: socket.socket) -> dns.message.Message:
    header = _read_exactly(sock, 2)
    return dns.message.from_wire(_read_exactly(sock, struct.unpack("!H", header)[0]))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def _framed(message: dns.message.Message) -> bytes:
    wire = message.to_wire()
    return struct.pack("!H", len(wire)) + wire


def test_pipelined_tcp_queries_are_all_answered_in_order(node: NodeProcess, zone: str) -> None:
    queries = [dns.message.make_query(f"www.{zone}", "A", id=1000 + i) for i in range(20)]
    with _tcp(node) as sock:
        sock.sendall(b"".join(_framed(q) for q in queries))  # all before reading any
        answers = [_read_message(sock) for _ in queries]
    assert [a.id for a in answers] == [q.id for q in queries]
    assert all(a.answer[0][0].to_text() == "192.0.2.1" for a in answers)


def test_query_split_across_segments_is_reassembled(node: NodeProcess, zone: str) -> None:
    framed = _framed(dns.message.make_query(f"www.{zone}", "A"))
    with _tcp(node) as sock:
        for byte in framed:
            sock.send(bytes([byte]))
        assert _read_message(sock).rcode() == dns.rcode.NOERROR


def test_idle_tcp_connection_is_closed_by_the_server(node: NodeProcess, zone: str) -> None:
    with _tcp(node) as sock:
        sock.sendall(_framed(dns.message.make_query(f"www.{zone}", "A")))
        _read_message(sock)
        sock.settimeout(SHARED_TCP_IDLE_TIMEOUT + 10)
        assert sock.recv(1) == b""  # EOF: the server closed the idle connection


def test_large_answer_is_truncated_over_udp_and_complete_over_tcp(
    node: NodeProcess, zone: str
) -> None:
    query = dns.message.make_query(f"big.{zone}", "A")
    udp = node.query(query)
    assert udp.flags & dns.flags.TC
    assert udp.question[0].name.to_text() == f"big.{zone}"
    tcp = node.query(query, tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 60
    edns = dns.message.make_query(f"big.{zone}", "A", use_edns=0, payload=4096)
    assert not node.query(edns).flags & dns.flags.TC  # 60 A records fit in 1232 bytes


def _mutations(rng: random.Random, seed_wires: list[bytes]) -> bytes:
    choice = rng.random()
    if choice < 0.2:
        return rng.randbytes(rng.randint(0, 80))
    wire = bytearray(rng.choice(seed_wires))
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.5 and wire:
            wire[rng.randrange(len(wire))] = rng.randrange(256)
        elif op < 0.75:
            del wire[rng.randrange(len(wire) + 1) :]
        else:
            wire[rng.randrange(len(wire) + 1) : 0] = rng.randbytes(rng.randint(1, 8))
    return bytes(wire)


def test_hostile_packets_never_stop_the_node(node: NodeProcess, zone: str) -> None:
    rng = random.Random(FUZZ_SEED)
    seeds = [
        dns.message.make_query(f"www.{zone}", "A").to_wire(),
        dns.message.make_query(f"big.{zone}", "ANY", use_edns=0, want_dnssec=True).to_wire(),
        dns.message.make_query("version.bind.", "TXT", rdclass="CH").to_wire(),
        dns.message.make_query(f"nope.{zone}", "MX", use_edns=0, payload=512).to_wire(),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(FUZZ_PACKETS):
            udp.sendto(_mutations(rng, seeds), ("127.0.0.1", node.dns_port))
    with _tcp(node) as sock:
        for _ in range(200):
            payload = _mutations(rng, seeds)
            try:
                sock.sendall(struct.pack("!H", len(payload)) + payload)
            except OSError:
                break
    deadline = time.monotonic() + 10
    while True:  # the node may still be working through the queued datagrams
        try:
            answer = node.query(dns.message.make_query(f"www.{zone}", "A"))
            break
        except dns.exception.Timeout:
            assert time.monotonic() < deadline, "node stopped answering after hostile packets"
    assert answer.answer[0][0].to_text() == "192.0.2.1"
    assert node.query(dns.message.make_query(f"www.{zone}", "A"), tcp=True).rcode() == 0
    assert node.proc is not None and node.proc.poll() is None


def test_dns_keeps_answering_during_a_large_import(node: NodeProcess, zone: str) -> None:
    lines = [f"h{i} 300 IN A 10.1.{i // 250}.{i % 250}" for i in range(8000)]
    text = "$ORIGIN import.test.\n@ 3600 IN SOA ns1 h 1 1 1 1 1\n@ 3600 IN NS ns1\n"
    text += "\n".join(lines) + "\n"
    result: dict[str, int] = {}

    def upload() -> None:
        with node.client() as c:
            response = c.put(
                "/api/v1/zones/import.test", content=text, headers={"Content-Type": "text/dns"}
            )
            result["status"] = response.status_code

    thread = threading.Thread(target=upload)
    thread.start()
    answered = 0
    query = dns.message.make_query(f"www.{zone}", "A")
    while thread.is_alive() and answered < 10_000:
        assert node.query(query).answer[0][0].to_text() == "192.0.2.1"  # 5 s timeout each
        answered += 1
    thread.join(timeout=120)
    assert result["status"] == 201
    assert answered > 0
    last = node.query(dns.message.make_query("h7999.import.test.", "A"))
    assert last.answer[0][0].to_text() == "10.1.31.249"
    assert last.answer[0].rdtype == dns.rdatatype.A
