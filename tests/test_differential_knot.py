"""Differential test: the same seeded queries to a real knotd and to peer53, compared
section by section. Every difference must belong to a named class in ``ALLOWED``, each of
which is a documented, RFC-motivated choice (docs/dns-behaviour.md).

Both sides are real processes on loopback: knotd loads the zone files, and a peer53 node
gets the same files through its HTTP API, so the comparison covers import, the index, the
answer code and the listeners together.
"""

from __future__ import annotations

import random
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from scripts.benchlib.servers import free_port
from tests.nodeproc import NodeProcess
from tests.zonefiles import ZONE_FILES, edge_zones

pytestmark = pytest.mark.interop

Ask = Callable[[bytes, bool], bytes | None]

SEED = 20240101
CASES = 3000
TCP_SHARE = 0.15
REPLY_TIMEOUT = 1.0
STARTUP_DEADLINE = 20.0

IDENTITY = "peer53-test"
VERSION = "test-version"
NSID = b"peer53-nsid"

KNOT_CONF = """\
server:
    rundir: "{root}/run"
    listen: 127.0.0.1@{port}
    identity: "{identity}"
    version: "{version}"
    nsid: "{nsid}"
    udp-max-payload: 1232
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{root}/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{root}/zones"
    zonefile-sync: -1
    journal-content: none
zone:
{zones}
"""


# --- the two servers ---


def ask_over_sockets(port: int) -> Ask:
    def ask(wire: bytes, tcp: bool) -> bytes | None:
        if tcp:
            return _ask_tcp(port, wire)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(REPLY_TIMEOUT)
            sock.sendto(wire, ("127.0.0.1", port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                return None

    return ask


def _ask_tcp(port: int, wire: bytes) -> bytes | None:
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        try:
            prefix = _read_exactly(sock, 2)
            return _read_exactly(sock, struct.unpack("!H", prefix)[0])
        except (TimeoutError, ConnectionError, EOFError):
            return None


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def knot_serves_all_zones(ask: Ask) -> bool:
    for origin in ZONE_FILES:
        wire = dns.message.make_query(origin, "SOA").to_wire()
        try:
            response = ask(wire, False)
        except OSError:
            return False
        if response is None:
            return False
        parsed = dns.message.from_wire(response)
        if parsed.rcode() != dns.rcode.NOERROR or not parsed.answer:
            return False
    return True


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ask]:
    knotd = shutil.which("knotd") or shutil.which("knotd", path="/usr/sbin:/sbin")
    if knotd is None:
        pytest.fail("knotd is not installed; the differential test needs Knot DNS (apt knot)")
    root = tmp_path_factory.mktemp("knot")
    for folder in ("run", "db", "zones"):
        (root / folder).mkdir()
    for path in ZONE_FILES.values():
        shutil.copy(path, root / "zones" / path.name)
    port = free_port()
    zones = "\n".join(
        f"  - domain: {origin}\n    file: {path.name}" for origin, path in ZONE_FILES.items()
    )
    config = root / "knot.conf"
    config.write_text(
        KNOT_CONF.format(
            root=root,
            port=port,
            identity=IDENTITY,
            version=VERSION,
            nsid=NSID.decode(),
            zones=zones,
        )
    )
    log_path = root / "knotd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([knotd, "-c", str(config)], stdout=log, stderr=log)
    try:
        ask = ask_over_sockets(port)
        _wait_until_serving(process, ask, log_path)
        yield ask
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen[bytes], ask: Ask, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"knotd exited with {process.returncode}:\n{log.read_text()}")
        if knot_serves_all_zones(ask):
            return
    pytest.fail(
        f"knotd did not serve the test zones within {STARTUP_DEADLINE}s:\n{log.read_text()}"
    )


@pytest.fixture(scope="module")
def peer53(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ask]:
    """A real node process, configured like Knot, with the zones imported through the API."""
    node = NodeProcess.init(tmp_path_factory.mktemp("peer53") / "data")
    with (node.data_dir / "peer53.toml").open("a") as config:
        config.write(
            f'\n[dns]\nid_server = "{IDENTITY}"\nhostname_bind = "{IDENTITY}"\n'
            f'version_bind = "{VERSION}"\nnsid = "{NSID.decode()}"\nudp_payload = 1232\n'
        )
    node.start()
    try:
        with node.client() as client:
            for origin, path in ZONE_FILES.items():
                response = client.put(
                    f"/api/v1/zones/{origin}",
                    content=path.read_text(),
                    headers={"Content-Type": "text/dns"},
                )
                assert response.status_code == 201, response.text
        yield ask_over_sockets(node.dns_port)
    finally:
        assert node.stop() == 0, node.log.read_text()


# --- the queries ---

QTYPES = (
    *("A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "DNAME", "DS", "SRV", "ANY", "PTR"),
    *("TYPE65280", "HTTPS", "SVCB", "NAPTR", "CAA", "HINFO", "RRSIG", "NSEC", "DNSKEY"),
    *("LOC", "SSHFP", "TLSA", "URI", "SPF"),
)
CHAOS_NAMES = ("id.server.", "hostname.bind.", "version.bind.", "version.server.", "authors.bind.")
ELSEWHERE = ("outside.test.", "example.", ".", "www.peer2.example.", "id.server.")
UNKNOWN_OPTION = dns.edns.OptionType.make(65001)
LONG_DNAME_QUERY = "q" * 60 + "." + "r" * 10 + ".long.edge.example."


@dataclass(frozen=True)
class Case:
    wire: bytes
    tcp: bool
    note: str


def interesting_names() -> list[dns.name.Name]:
    """Every owner and empty non-terminal in the test zones."""
    names: set[dns.name.Name] = set()
    for zone in edge_zones():
        for rrset in zone.rrsets():
            name = rrset.name
            while name != zone.origin:
                names.add(name)
                name = name.parent()
            names.add(zone.origin)
    return sorted(names)


def mixed_case(rng: random.Random, name: dns.name.Name) -> dns.name.Name:
    """Sometimes ``name`` with random letters in the other case (the 0x20 trick)."""
    if rng.random() < 0.6:
        return name
    text = "".join(c.swapcase() if rng.random() < 0.5 else c for c in name.to_text())
    return dns.name.from_text(text)


def random_query(rng: random.Random, names: list[dns.name.Name]) -> Case:
    roll = rng.random()
    if roll < 0.05:
        qname = dns.name.from_text(rng.choice(CHAOS_NAMES + ELSEWHERE[:1]))
        qclass, qtype = dns.rdataclass.CH, rng.choice(("TXT", "TXT", "A", "ANY"))
    else:
        base = rng.choice(names)
        if roll < 0.30:
            base = dns.name.Name((rng.choice((b"nope", b"x", b"*", b"a.b")),)).concatenate(base)
        elif roll < 0.33:
            base = dns.name.from_text(rng.choice((*ELSEWHERE, LONG_DNAME_QUERY)))
        qname = base
        qclass = dns.rdataclass.ANY if rng.random() < 0.04 else dns.rdataclass.IN
        qtype = rng.choice(QTYPES)
    message = dns.message.make_query(mixed_case(rng, qname), qtype, qclass)
    message.flags = dns.flags.RD if rng.random() < 0.5 else 0
    if rng.random() < 0.05:
        message.flags |= dns.flags.CD
    if rng.random() < 0.65:
        options: list[dns.edns.Option] = []
        if rng.random() < 0.3:
            options.append(dns.edns.GenericOption(dns.edns.NSID, b""))
        if rng.random() < 0.1:
            options.append(dns.edns.GenericOption(UNKNOWN_OPTION, rng.randbytes(4)))
        message.use_edns(
            1 if rng.random() < 0.03 else 0,
            dns.flags.DO if rng.random() < 0.5 else 0,
            rng.choice((512, 700, 1232, 4096, 65535)),
            options=options,
        )
    tcp = rng.random() < TCP_SHARE
    return Case(message.to_wire(), tcp, f"{message.question[0]} tcp={tcp}")


def fixed_cases() -> list[Case]:
    """Malformed and unusual packets, and ANY over TCP where a node has several RRsets."""
    plain = dns.message.make_query("www.edge.example.", "A").to_wire()
    with_opt = dns.message.make_query("www.edge.example.", "A", use_edns=0).to_wire()
    two_opts = with_opt[:11] + b"\x02" + with_opt[12:] + with_opt[-11:]
    malformed = {
        "two OPT records": two_opts,
        "trailing junk": plain + b"\x00",
        "no question": plain[:4] + b"\x00" * 8,
        "two questions": plain[:5] + b"\x02" + plain[6:] + plain[12:],
        "cut-off question": plain[:20],
        "OPT owner not root": with_opt[:-11] + b"\x01a\x00" + with_opt[-10:],
        "EDNS version 1": dns.message.make_query("www.edge.example.", "A", use_edns=1).to_wire(),
    }
    for opcode in (1, 2, 3, 6, 15):
        malformed[f"opcode {opcode}"] = (
            plain[:2] + bytes(((plain[2] & 0x87) | opcode << 3,)) + plain[3:]
        )
    cases = [Case(wire, False, note) for note, wire in malformed.items()]
    for qname in ("edge.example.", "x.wild.edge.example.", "unknown.edge.example."):
        wire = dns.message.make_query(qname, "ANY").to_wire()
        cases.append(Case(wire, True, f"{qname} ANY tcp=True"))
    return cases


def all_cases() -> list[Case]:
    rng = random.Random(SEED)
    names = interesting_names()
    return fixed_cases() + [random_query(rng, names) for _ in range(CASES)]


# --- comparing ---

RecordKey = tuple[str, int, int, int, frozenset[bytes]]
NO_RECORDS: frozenset[RecordKey] = frozenset()
RCODE_BITS = 0x000F


@dataclass(frozen=True)
class View:
    """What a response says, in a form where equal meaning compares equal."""

    rcode: int
    flags: int
    """Header flags without the rcode bits, which ``rcode`` holds whole."""
    question: tuple[tuple[tuple[bytes, ...], int, int], ...]
    answer: frozenset[RecordKey]
    authority: frozenset[RecordKey]
    additional: frozenset[RecordKey]
    edns: tuple[int, int, bool, tuple[tuple[int, bytes], ...]] | None
    qname_spellings: frozenset[tuple[bytes, ...]]
    """Exact labels of answer owners equal to the query name (0x20 case)."""

    @property
    def truncated(self) -> bool:
        return bool(self.flags & dns.flags.TC)

    def types(self, section: frozenset[RecordKey]) -> set[int]:
        return {key[2] for key in section}

    def without_records(self) -> View:
        return replace(
            self,
            answer=NO_RECORDS,
            authority=NO_RECORDS,
            additional=NO_RECORDS,
            qname_spellings=frozenset(),
        )


def record_keys(section: list[dns.rrset.RRset]) -> frozenset[RecordKey]:
    return frozenset(
        (
            rrset.name.canonicalize().to_text(),
            rrset.rdclass,
            rrset.rdtype,
            rrset.ttl,
            frozenset(rdata.to_digestable() for rdata in rrset),
        )
        for rrset in section
    )


def view(wire: bytes | None) -> View | None:
    if wire is None:
        return None
    message = dns.message.from_wire(wire)
    qname = message.question[0].name if message.question else None
    edns = None
    if message.edns >= 0:
        options = tuple(sorted((int(o.otype), o.to_wire()) for o in message.options))
        edns = (message.edns, message.payload, bool(message.ednsflags & dns.flags.DO), options)
    return View(
        rcode=message.rcode(),
        flags=message.flags & ~RCODE_BITS,
        question=tuple((q.name.labels, q.rdtype, q.rdclass) for q in message.question),
        answer=record_keys(message.answer),
        authority=record_keys(message.authority),
        additional=record_keys(message.additional),
        edns=edns,
        qname_spellings=frozenset(r.name.labels for r in message.answer if r.name == qname),
    )


@dataclass(frozen=True)
class Exchange:
    case: Case
    query: dns.message.Message | None
    knot: View | None
    peer53: View | None
    ask_peer53: Ask

    @cached_property
    def complete(self) -> View | None:
        """peer53's answer over TCP: everything, for judging answers cut short by size."""
        return view(self.ask_peer53(self.case.wire, True))

    @property
    def qtype(self) -> int | None:
        if self.query is None or not self.query.question:
            return None
        return self.query.question[0].rdtype


# Each allowed difference class is a rule: when its precondition holds it rewrites Knot's
# view into what peer53 says instead (or both into a common form), so that several classes
# can meet in one response. Whatever is left after all rules must be equal.
Views = tuple[View | None, View | None]
Rule = Callable[[Exchange, View, View], Views | None]


def cd_bit_copied(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 4035 §3.1.6: the CD bit is copied to the response; Knot 3.2 clears it."""
    if x.query is None or not x.query.flags & dns.flags.CD or knot.flags & dns.flags.CD:
        return None
    return replace(knot, flags=knot.flags | dns.flags.CD), peer


def dname_yxdomain(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 6672 §2.2: an over-long DNAME substitution is YXDOMAIN; Knot says NXDOMAIN."""
    if not (
        peer.rcode == dns.rcode.YXDOMAIN
        and knot.rcode == dns.rcode.NXDOMAIN
        and peer.types(peer.answer) == {dns.rdatatype.DNAME}
        and peer.answer <= knot.answer
        and knot.types(knot.authority) <= {dns.rdatatype.SOA}
    ):
        return None
    return replace(knot, rcode=peer.rcode, answer=peer.answer, authority=peer.authority), peer


def negative_soa_truncated(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 2308 §3: a negative answer must carry the SOA, so TC when it does not fit;
    Knot leaves the SOA out instead."""
    complete = x.complete
    if complete is None or not peer.truncated or knot.truncated:
        return None
    soa = frozenset(key for key in complete.authority if key[2] == dns.rdatatype.SOA)
    if not soa or (knot.answer, knot.authority) != (complete.answer, complete.authority - soa):
        return None
    return replace(knot, flags=knot.flags | dns.flags.TC).without_records(), peer


def truncated_content(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 2181 §9: a truncated response is retried over TCP and its records ignored;
    peer53 sends none, Knot the RRsets that fitted before the one that did not."""
    if not (knot.truncated and peer.truncated):
        return None
    return knot.without_records(), peer.without_records()


def space_limited_additional(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 1035 §4.1: optional additional data is left out when it does not fit; the
    servers compress names differently, so they leave out different records."""
    if x.complete is None or knot.truncated or peer.truncated:
        return None
    complete = x.complete.additional
    if not (knot.additional < complete and peer.additional < complete):
        return None
    return replace(knot, additional=complete), replace(peer, additional=complete)


def any_over_tcp(x: Exchange, knot: View, peer: View) -> Views | None:
    """RFC 8482 §4.1 lets a server answer ANY with one RRset; peer53 does so over UDP
    only, Knot over TCP too."""
    if not x.case.tcp or x.qtype != dns.rdatatype.ANY:
        return None
    lowest = min(peer.types(peer.answer), default=None)
    if not (
        knot.answer <= peer.answer
        and knot.types(knot.answer) == {lowest}
        and knot.additional <= peer.additional
    ):
        return None
    return replace(knot, answer=peer.answer, additional=peer.additional), peer


ALLOWED: dict[str, Rule] = {
    "cd-bit-copied": cd_bit_copied,
    "dname-yxdomain": dname_yxdomain,
    "negative-soa-truncated": negative_soa_truncated,
    "truncated-content": truncated_content,
    "space-limited-additional": space_limited_additional,
    "any-over-tcp": any_over_tcp,
}


def formerr_where_knot_is_silent(x: Exchange) -> bool:
    """RFC 9619 (QDCOUNT > 1) and RFC 1035 §4.1.1 (a question that does not parse):
    peer53 says FORMERR, Knot drops the packet; both are allowed."""
    malformed = x.query is None or len(x.query.question) != 1
    return malformed and x.knot is None and x.peer53 is not None and x.peer53.rcode == 1


def opt_owner_formerr(x: Exchange) -> bool:
    """RFC 6891 §6.1.2: the OPT owner must be the root; peer53 rejects other owners with
    FORMERR, Knot ignores the owner."""
    return (
        x.case.note == "OPT owner not root"
        and x.peer53 is not None
        and x.peer53.rcode == dns.rcode.FORMERR
    )


ALLOWED_SILENCE: dict[str, Callable[[Exchange], bool]] = {
    "formerr-where-knot-is-silent": formerr_where_knot_is_silent,
    "opt-owner-formerr": opt_owner_formerr,
}


def explain(x: Exchange) -> list[str] | None:
    """The allowed classes that account for every difference ([] if none), or None."""
    for name, allowed in ALLOWED_SILENCE.items():
        if x.knot != x.peer53 and allowed(x):
            return [name]
    knot, peer = x.knot, x.peer53
    used = []
    for name, rule in ALLOWED.items():
        if knot is None or peer is None or knot == peer:
            break
        rewritten = rule(x, knot, peer)
        if rewritten is not None:
            knot, peer = rewritten
            used.append(name)
    return used if knot == peer else None


def exchange(case: Case, knot: Ask, peer53: Ask) -> Exchange:
    try:
        query: dns.message.Message | None = dns.message.from_wire(case.wire)
    except dns.exception.DNSException:
        query = None
    return Exchange(
        case,
        query,
        view(knot(case.wire, case.tcp)),
        view(peer53(case.wire, case.tcp)),
        peer53,
    )


def describe(x: Exchange) -> str:
    return f"{x.case.note}\n  knot:   {x.knot}\n  peer53: {x.peer53}"


@pytest.fixture(scope="module")
def exchanges(knot: Ask, peer53: Ask) -> list[Exchange]:
    return [exchange(case, knot, peer53) for case in all_cases()]


def test_peer53_answers_like_knot(exchanges: list[Exchange]) -> None:
    outcomes: Counter[str] = Counter()
    unexplained: list[Exchange] = []
    for x in exchanges:
        classes = explain(x)
        if classes is None:
            unexplained.append(x)
        else:
            outcomes.update(classes or ["same"])
    report = "\n".join(describe(x) for x in unexplained[:15])
    assert not unexplained, f"{len(unexplained)} unexplained differences ({outcomes}):\n{report}"
    assert outcomes["same"] > CASES * 0.8


def test_generator_reaches_the_edge_cases(exchanges: list[Exchange]) -> None:
    """Guards the comparison above against a generator that stopped exercising anything."""
    seen: Counter[str] = Counter()
    for x in exchanges:
        response = x.peer53
        if response is None:
            continue
        types = {key[2] for key in response.answer}
        seen["truncated"] += response.truncated
        seen["referral"] += not response.answer and any(
            key[2] == dns.rdatatype.NS for key in response.authority
        )
        seen["dname"] += dns.rdatatype.DNAME in types
        seen["nxdomain"] += response.rcode == dns.rcode.NXDOMAIN
        seen["chaos"] += any(key[1] == dns.rdataclass.CH for key in response.answer)
        seen["badvers"] += response.rcode == dns.rcode.BADVERS
        seen["0x20"] += any(
            any(label != label.lower() for label in spelling)
            for spelling in response.qname_spellings
        )
    assert min(seen.values()) > 0 and len(seen) == 7, seen
