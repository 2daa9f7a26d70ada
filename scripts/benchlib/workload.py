"""The benchmark's zone and query mix.

Both are generated from a seed, so every server and every run of the bench gets the same
questions, and the mix is exact (not sampled): each kind of query gets its share of the file,
and each query knows what kind of answer it should get, so the answers can be checked before
anything is timed.

The zone has about 1,000 records: an apex with SOA, NS, MX, TXT, A and AAAA; hosts with A
(some with two), AAAA and TXT; MX/TXT-only names; an empty non-terminal; one- and two-step
CNAME chains; a wildcard; and delegations with in-bailiwick glue.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

ORIGIN = dns.name.from_text("bench.example.")
SOA = "ns1 hostmaster 2026010100 86400 7200 3600000 300"
HOSTS = 320
DEPARTMENTS = 30
LAB_HOSTS = 30
MAIL_HOSTS = 4
ALIASES = 40
CHAINS = 20
DELEGATIONS = 50
TTL = 3600
HOST_TTL = 300

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
MX = dns.rdatatype.MX
NS = dns.rdatatype.NS
TXT = dns.rdatatype.TXT


class Kind(enum.StrEnum):
    POSITIVE = "positive"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    CNAME = "cname"
    WILDCARD = "wildcard"
    REFERRAL = "referral"
    APEX = "apex"


MIX: dict[Kind, float] = {
    Kind.POSITIVE: 0.62,
    Kind.NXDOMAIN: 0.15,
    Kind.NODATA: 0.15,
    Kind.CNAME: 0.03,
    Kind.WILDCARD: 0.02,
    Kind.REFERRAL: 0.02,
    Kind.APEX: 0.01,
}


@dataclass(frozen=True)
class Query:
    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    kind: Kind

    def line(self) -> str:
        """The query as a line of a dnsperf data file."""
        return f"{self.name.to_text()} {dns.rdatatype.to_text(self.rdtype)}"


Question = tuple[dns.name.Name, dns.rdatatype.RdataType]


@dataclass(frozen=True)
class Workload:
    zone: dns.zone.Zone
    queries: tuple[Query, ...]

    @property
    def origin(self) -> dns.name.Name:
        assert self.zone.origin is not None
        return self.zone.origin

    def zone_text(self) -> str:
        return self.zone.to_text(sorted=True, relativize=True, want_origin=True)

    def query_text(self) -> str:
        return "".join(query.line() + "\n" for query in self.queries)

    def records(self) -> int:
        return sum(len(rdataset) for _, rdataset in self.zone.iterate_rdatasets())

    def mix(self) -> dict[Kind, int]:
        counts = Counter(query.kind for query in self.queries)
        return {kind: counts[kind] for kind in Kind}

    def distinct_queries(self) -> list[Query]:
        return list({(q.name, q.rdtype): q for q in self.queries}.values())


class _ZoneBuilder:
    """Builds the zone and remembers which questions give which kind of answer."""

    def __init__(self) -> None:
        self.zone = dns.zone.Zone(ORIGIN)
        self.questions: dict[Kind, list[Question]] = {kind: [] for kind in Kind}

    def add(self, owner: str, rdtype: dns.rdatatype.RdataType, ttl: int, *texts: str) -> None:
        name = dns.name.from_text(owner, ORIGIN)
        rdataset = self.zone.find_rdataset(name, rdtype, create=True)
        for text in texts:
            rdataset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, ORIGIN), ttl)

    def expect(self, kind: Kind, owner: str, *rdtypes: dns.rdatatype.RdataType) -> None:
        name = dns.name.from_text(owner, ORIGIN)
        self.questions[kind].extend((name, rdtype) for rdtype in rdtypes)

    def build(self) -> None:
        self._apex()
        self._hosts()
        self._aliases()
        self._wildcard()
        self._delegations()

    def _apex(self) -> None:
        self.add("@", dns.rdatatype.SOA, TTL, SOA)
        self.add("@", NS, TTL, "ns1", "ns2")
        self.add("@", MX, TTL, "10 mail-0", "20 mail-1")
        self.add("@", TXT, TTL, '"v=spf1 mx -all"')
        self.add("@", A, TTL, "192.0.2.1")
        self.add("@", AAAA, TTL, "2001:db8::1")
        self.expect(Kind.APEX, "@", dns.rdatatype.SOA, NS, MX, TXT, A, AAAA)
        for index in (1, 2):
            self.add(f"ns{index}", A, TTL, f"192.0.2.{index + 1}")
            self.add(f"ns{index}", AAAA, TTL, f"2001:db8::{index + 1}")
            self.expect(Kind.POSITIVE, f"ns{index}", A, AAAA)
            self.expect(Kind.NODATA, f"ns{index}", MX, TXT)

    def _hosts(self) -> None:
        for index in range(MAIL_HOSTS):
            self.add(f"mail-{index}", A, TTL, f"192.0.2.{25 + index}")
            self.expect(Kind.POSITIVE, f"mail-{index}", A)
            self.expect(Kind.NODATA, f"mail-{index}", AAAA)
        for index in range(HOSTS):
            owner = f"host-{index}"
            addresses = [f"10.{index // 250}.{index % 250}.1"]
            if index % 5 == 0:
                addresses.append(f"10.{index // 250}.{index % 250}.2")
            self.add(owner, A, HOST_TTL, *addresses)
            self.expect(Kind.POSITIVE, owner, A)
            self.expect(Kind.NODATA, owner, MX)
            if index % 2 == 0:
                self.add(owner, AAAA, HOST_TTL, f"2001:db8:1::{index:x}")
                self.expect(Kind.POSITIVE, owner, AAAA)
            else:
                self.expect(Kind.NODATA, owner, AAAA)
            if index % 3 == 0:
                self.add(owner, TXT, HOST_TTL, f'"host {index}" "rack {index % 17}"')
                self.expect(Kind.POSITIVE, owner, TXT)
            else:
                self.expect(Kind.NODATA, owner, TXT)
        for index in range(DEPARTMENTS):
            owner = f"dept-{index}"
            self.add(owner, MX, TTL, f"10 mail-{index % MAIL_HOSTS}")
            self.add(owner, TXT, TTL, f'"v=spf1 include:dept-{index} -all"')
            self.expect(Kind.POSITIVE, owner, MX, TXT)
            self.expect(Kind.NODATA, owner, A, AAAA)
        for index in range(LAB_HOSTS):
            self.add(f"x-{index}.lab", A, HOST_TTL, f"10.200.0.{index + 1}")
            self.expect(Kind.POSITIVE, f"x-{index}.lab", A)
            self.expect(Kind.NODATA, f"x-{index}.lab", AAAA)
        self.expect(Kind.NODATA, "lab", A, AAAA, TXT)  # an empty non-terminal

    def _aliases(self) -> None:
        for index in range(ALIASES):
            self.add(f"alias-{index}", dns.rdatatype.CNAME, TTL, f"host-{index * 7 % HOSTS}")
            self.expect(Kind.CNAME, f"alias-{index}", A)
        for index in range(CHAINS):
            self.add(f"chain-{index}", dns.rdatatype.CNAME, TTL, f"alias-{index * 3 % ALIASES}")
            self.expect(Kind.CNAME, f"chain-{index}", A)

    def _wildcard(self) -> None:
        self.add("*.wild", A, HOST_TTL, "192.0.2.80")
        self.add("*.wild", TXT, HOST_TTL, '"synthesised"')

    def _delegations(self) -> None:
        for index in range(DELEGATIONS):
            child = f"sub-{index}"
            self.add(child, NS, TTL, f"ns1.{child}", f"ns2.{child}")
            self.add(f"ns1.{child}", A, TTL, f"198.51.100.{index + 1}")
            self.add(f"ns2.{child}", A, TTL, f"203.0.113.{index + 1}")
            self.expect(Kind.REFERRAL, child, NS, A)
            self.expect(Kind.REFERRAL, f"www.{child}", A, AAAA)


def _shares(total: int) -> dict[Kind, int]:
    """Exact counts per kind; the positive answers take whatever rounding leaves."""
    counts: dict[Kind, int] = {kind: round(share * total) for kind, share in MIX.items()}
    counts[Kind.POSITIVE] = total - sum(counts.values()) + counts[Kind.POSITIVE]
    return counts


def _random_label(rng: random.Random, prefix: str) -> dns.name.Name:
    return dns.name.from_text(f"{prefix}-{rng.getrandbits(32):08x}", ORIGIN)


def _query(rng: random.Random, builder: _ZoneBuilder, kind: Kind) -> Query:
    if kind == Kind.NXDOMAIN:
        if rng.random() < 0.7:
            name = _random_label(rng, "nx")
        else:
            below = dns.name.from_text(f"host-{rng.randrange(HOSTS)}", ORIGIN)
            name = dns.name.Name((b"nope", *below.labels))
        return Query(name, rng.choice((A, A, A, AAAA, MX, TXT)), kind)
    if kind == Kind.WILDCARD:
        name = dns.name.Name((b"w-%04x" % rng.randrange(200), b"wild", *ORIGIN.labels))
        return Query(name, rng.choice((A, A, TXT)), kind)
    name, rdtype = rng.choice(builder.questions[kind])
    return Query(name, rdtype, kind)


def build_workload(query_count: int = 10_000, seed: int = 53) -> Workload:
    builder = _ZoneBuilder()
    builder.build()
    rng = random.Random(seed)
    queries = [
        _query(rng, builder, kind)
        for kind, count in _shares(query_count).items()
        for _ in range(count)
    ]
    rng.shuffle(queries)
    return Workload(builder.zone, tuple(queries))
