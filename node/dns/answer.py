"""The authoritative lookup: RFC 1034 §4.3.2 over the in-memory zone index.

Theory of operation: a question is answered from the most specific served zone (for DS, the
zone holding the parent side of the cut, RFC 4035 §3.1.4.1). Inside that zone the search
walks down from the apex towards the query name, because a zone cut or a DNAME above the
name decides the answer before the name itself does (data below either is occluded). Then:

- the name exists: its RRsets answer, a CNAME is followed, a delegation gives a referral
  (except for DS at the cut, which the parent answers), and an empty non-terminal gives
  NODATA;
- the name does not exist: the wildcard child of the closest encloser, if there is one,
  supplies the data with the query name as owner (RFC 4592); otherwise NXDOMAIN.

CNAMEs, synthesized DNAME CNAMEs (RFC 6672) and wildcard CNAMEs are followed only inside
the zone being answered, at most ``MAX_CHAIN`` times, and never through the same RRset or
the same wildcard twice; an out-of-zone target ends the answer with what was found so far.
Negative answers carry the zone's SOA with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).

Additional data is A/AAAA (and, for SVCB/HTTPS, the same type) of in-zone targets of NS, MX,
SRV, SVCB and HTTPS records. In a referral the addresses of name servers inside the
delegated domain are glue that must fit (RFC 9471); everything else is optional.

The result is plain data, independent of the packet it will go into, so a cache can keep it
keyed by question and the renderer can decide on truncation.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dns.edns
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from node.zones.index import Zone, ZoneTable

RdataType = dns.rdatatype.RdataType

MAX_CHAIN = 5
"""CNAME/DNAME links followed for one question; Knot's limit, so both servers agree."""

_NO_CHASE = frozenset({RdataType.CNAME, RdataType.RRSIG, RdataType.NSEC, RdataType.ANY})
"""Query types answered from a CNAME's owner itself instead of following it."""

_TARGETED = frozenset({RdataType.NS, RdataType.MX, RdataType.SRV, RdataType.SVCB, RdataType.HTTPS})
_ADDRESSES = (RdataType.A, RdataType.AAAA)
_WILDCARD = dns.name.Name((b"*",))


@dataclass(frozen=True)
class Answer:
    """Everything a response says about one question, before it meets a packet size."""

    rcode: dns.rcode.Rcode
    authoritative: bool
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    glue: tuple[dns.rrset.RRset, ...] = ()
    """Additional records that must fit, or the response is truncated (RFC 9471)."""
    additional: tuple[dns.rrset.RRset, ...] = ()
    """Additional records sent only when there is room."""
    extended_error: dns.edns.EDECode | None = None


REFUSED = Answer(dns.rcode.Rcode.REFUSED, authoritative=False)


def lookup(
    zones: ZoneTable,
    qname: dns.name.Name,
    qtype: RdataType,
    qclass: dns.rdataclass.RdataClass,
    *,
    full_any: bool,
) -> Answer:
    """Answer one IN-class question. ``full_any`` returns every RRset for ANY, not one."""
    if qclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
        return REFUSED
    zone = _zone_for(zones, qname, qtype)
    if zone is None:
        return Answer(
            dns.rcode.Rcode.REFUSED,
            authoritative=False,
            extended_error=dns.edns.EDECode.NOT_AUTHORITATIVE,
        )
    soa = zone.get(zone.origin, RdataType.SOA)
    if soa is None:
        # A zone without SOA is one the store has not finished loading.
        return Answer(dns.rcode.Rcode.SERVFAIL, authoritative=False)
    return _Resolution(zone, soa, qtype, full_any).run(qname)


def _zone_for(zones: ZoneTable, qname: dns.name.Name, qtype: RdataType) -> Zone | None:
    if qtype == RdataType.DS and qname != dns.name.root:
        parent_side = zones.find(qname.parent())
        if parent_side is not None:
            return parent_side
    return zones.find(qname)


class _End(enum.Enum):
    HIT = enum.auto()
    NODATA = enum.auto()
    NXDOMAIN = enum.auto()
    YXDOMAIN = enum.auto()


@dataclass(frozen=True)
class _Follow:
    target: dns.name.Name


@dataclass(frozen=True)
class _Referral:
    cut: dns.name.Name


_Step = _End | _Follow | _Referral


class _Resolution:
    """One walk through a zone for one question, collecting the answer section."""

    def __init__(self, zone: Zone, soa: dns.rrset.RRset, qtype: RdataType, full_any: bool):
        self.zone = zone
        self.soa = soa
        self.qtype = qtype
        self.full_any = full_any
        self.answer: list[dns.rrset.RRset] = []
        self.links = 0
        self.wildcards_used: set[dns.name.Name] = set()

    def run(self, qname: dns.name.Name) -> Answer:
        step: _Step = self._resolve(qname)
        while isinstance(step, _Follow):
            if not step.target.is_subdomain(self.zone.origin):
                step = _End.HIT
            else:
                step = self._resolve(step.target)
        answer = tuple(self.answer)
        if isinstance(step, _Referral):
            return self._referral(answer, step.cut)
        if step is _End.YXDOMAIN:
            return Answer(dns.rcode.Rcode.YXDOMAIN, authoritative=True, answer=answer)
        rcode = dns.rcode.Rcode.NXDOMAIN if step is _End.NXDOMAIN else dns.rcode.Rcode.NOERROR
        authority = () if step is _End.HIT else (self._negative_soa(),)
        return Answer(
            rcode,
            authoritative=True,
            answer=answer,
            authority=authority,
            additional=tuple(self._additional(answer)),
        )

    def _resolve(self, sname: dns.name.Name) -> _Step:
        zone = self.zone
        encloser = zone.origin
        for depth in range(len(zone.origin), len(sname)):
            ancestor = sname.split(depth)[1]
            if not zone.exists(ancestor):
                return self._not_found(sname, encloser)
            encloser = ancestor
            node = zone.node(ancestor)
            if node is None:
                continue
            # The origin test comes first: reading the apex NS would tie every cached
            # answer in the zone to it.
            if ancestor != zone.origin and RdataType.NS in node:
                return _Referral(ancestor)
            dname = node.get(RdataType.DNAME)
            if dname is not None:
                return self._substitute(dname, sname)
        if zone.exists(sname):
            return self._at_node(sname, sname, wildcard=False)
        return self._not_found(sname, encloser)

    def _not_found(self, sname: dns.name.Name, encloser: dns.name.Name) -> _Step:
        source = _WILDCARD.concatenate(encloser)
        if not self.zone.exists(source):
            return _End.NXDOMAIN
        return self._at_node(source, sname, wildcard=True)

    def _at_node(self, name: dns.name.Name, owner: dns.name.Name, *, wildcard: bool) -> _Step:
        """Answer from the RRsets at ``name``; ``owner`` differs when a wildcard synthesizes."""
        node = self.zone.node(name)
        if node is None:
            return _End.NODATA
        if name != self.zone.origin and self.qtype != RdataType.DS and RdataType.NS in node:
            return _Referral(name)
        cname = node.get(RdataType.CNAME)
        if cname is not None and self.qtype not in _NO_CHASE:
            return self._chase(_renamed(cname, owner), name if wildcard else None)
        if self.qtype == RdataType.ANY:
            rrsets = [node[rdtype] for rdtype in sorted(node)]
            chosen = rrsets if self.full_any else rrsets[:1]
        else:
            rrset = node.get(self.qtype)
            chosen = [] if rrset is None else [rrset]
        if not chosen:
            return _End.NODATA
        self.answer.extend(_renamed(rrset, owner) for rrset in chosen)
        return _End.HIT

    def _link(self, rrset: dns.rrset.RRset) -> bool:
        """Add one CNAME/DNAME link to the answer; False when the chain must stop here."""
        self.links += 1
        if self.links > MAX_CHAIN or any(_same_rrset(rrset, seen) for seen in self.answer):
            return False
        self.answer.append(rrset)
        return True

    def _chase(self, cname: dns.rrset.RRset, wildcard: dns.name.Name | None) -> _Step:
        if not self._link(cname):
            return _End.HIT
        if wildcard is not None:
            if wildcard in self.wildcards_used:
                return _End.HIT
            self.wildcards_used.add(wildcard)
        target: dns.name.Name = cname[0].target
        return _Follow(target)

    def _substitute(self, dname: dns.rrset.RRset, sname: dns.name.Name) -> _Step:
        if not self._link(dname):
            return _End.HIT
        try:
            target = sname.relativize(dname.name).concatenate(dname[0].target)
        except dns.name.NameTooLong:
            return _End.YXDOMAIN
        rdata = dns.rdtypes.ANY.CNAME.CNAME(dname.rdclass, RdataType.CNAME, target)  # type: ignore[no-untyped-call]
        self.answer.append(dns.rrset.from_rdata(sname, dname.ttl, rdata))
        if self.qtype == RdataType.CNAME:
            return _End.HIT
        return _Follow(target)

    def _negative_soa(self) -> dns.rrset.RRset:
        ttl = min(self.soa.ttl, self.soa[0].minimum)
        if ttl == self.soa.ttl:
            return self.soa
        soa = copy.copy(self.soa)
        soa.ttl = ttl
        return soa

    def _referral(self, answer: tuple[dns.rrset.RRset, ...], cut: dns.name.Name) -> Answer:
        ns = self.zone.get(cut, RdataType.NS)
        assert ns is not None
        glue: list[dns.rrset.RRset] = []
        optional: list[dns.rrset.RRset] = []
        for rdata in ns:
            in_domain = rdata.target.is_subdomain(cut)
            (glue if in_domain else optional).extend(self._addresses_of(rdata.target, ns.rdtype))
        optional.extend(self._additional(answer))
        return Answer(
            dns.rcode.Rcode.NOERROR,
            authoritative=bool(answer),
            answer=answer,
            authority=(ns,),
            glue=tuple(glue),
            additional=tuple(_unique(optional, already=[*answer, ns, *glue])),
        )

    def _additional(self, answer: tuple[dns.rrset.RRset, ...]) -> Iterator[dns.rrset.RRset]:
        found = (
            address
            for rrset in answer
            if rrset.rdtype in _TARGETED
            for rdata in rrset
            for address in self._addresses_of(_target(rdata), rrset.rdtype)
        )
        return _unique(found, already=answer)

    def _addresses_of(self, target: dns.name.Name, via: RdataType) -> list[dns.rrset.RRset]:
        """A/AAAA (and SVCB/HTTPS) at an in-zone target, glue and wildcards included."""
        zone = self.zone
        if not target.is_subdomain(zone.origin):
            return []
        node = zone.node(target)
        if node is None and not zone.exists(target):
            encloser = target.parent()
            while not zone.exists(encloser) and encloser != zone.origin:
                encloser = encloser.parent()
            node = zone.node(_WILDCARD.concatenate(encloser))
        if node is None:
            return []
        wanted = (*_ADDRESSES, via) if via in (RdataType.SVCB, RdataType.HTTPS) else _ADDRESSES
        return [_renamed(node[rdtype], target) for rdtype in wanted if rdtype in node]


def _target(rdata: Any) -> dns.name.Name:
    """The name an NS, MX, SRV, SVCB or HTTPS record points at (dnspython's rdata is untyped)."""
    name: dns.name.Name = rdata.exchange if rdata.rdtype == RdataType.MX else rdata.target
    return name


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """``rrset`` owned by ``owner``, spelled exactly as given (0x20 case, wildcard names)."""
    if rrset.name.labels == owner.labels:
        return rrset
    renamed = copy.copy(rrset)
    renamed.name = owner
    return renamed


def _same_rrset(a: dns.rrset.RRset, b: dns.rrset.RRset) -> bool:
    return a.name == b.name and a.rdtype == b.rdtype and set(a) == set(b)


def _unique(
    rrsets: Iterable[dns.rrset.RRset], *, already: Iterable[dns.rrset.RRset]
) -> Iterator[dns.rrset.RRset]:
    seen = {(rrset.name, rrset.rdtype) for rrset in already}
    for rrset in rrsets:
        key = (rrset.name, rrset.rdtype)
        if key not in seen:
            seen.add(key)
            yield rrset
