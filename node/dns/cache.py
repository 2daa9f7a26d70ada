"""The answer cache: rendered responses reused across queries, dropped exactly when stale.

Theory of operation: ``AnswerCache.respond`` sits in front of ``query.respond``. The fast
path (``fastpath.read_query``) reads the header and question of a plain query and yields a
key; a stored response under that key is fitted to the query (ID, RD, CD, question bytes,
SOA serial) and sent without dnspython. Anything the fast path does not recognise goes to
the full path and is not stored. A miss runs the full path (``query.reply_to``) and stores
its rendering.

Invalidation is driven by what the full path read, not by guessing. While a miss is
answered the zone table logs every read (``ZoneTable.recording``): which zone serves a
name, whether a name exists or owns data, which RRset of which type it holds. An answer is
a function of those results alone, so it stays right until a write changes one of them.
The table reports each write by the reads it changes (``Change.reads``): the RRset's own
(owner, type), the owner's list of types, whether the owner owns data, and whether it and
its ancestors exist (empty non-terminals appearing or vanishing); adding, replacing or
dropping a zone changes which zone serves the names at and below its origin. Every stored
response that made one of those reads is dropped. This covers, without special cases:

- the owner's own answers, and ANY at it;
- CNAME and DNAME chains through the owner, and additional-section targets at it;
- referrals and everything below a delegation or DNAME that appears or goes;
- NXDOMAIN, NODATA and wildcard answers whose closest encloser, wildcard or empty
  non-terminal status the write changes (they read those names' existence);
- REFUSED answers for names inside a zone that starts being served.

Type-level reads keep unrelated writes apart: every lookup walks through the apex, but it
only looks for NS and DNAME there, so a TXT record added at the apex drops only answers
that read the apex TXT RRset (or all its types, for ANY).

The SOA serial changes with every write, and every lookup reads the SOA. A write that
changes only the serial therefore drops nothing: responses that carry the SOA (negative
answers, SOA and ANY at the apex) were rendered with a sentinel serial whose offset was
recorded, and get the zone's current serial (``fastpath.Serial``) copied in when they are
sent. The rare response where the sentinel is not found exactly once is rendered with the
real serial and dropped on the next serial change. Any other SOA change (TTL, MINIMUM,
names, timers) drops every answer that read the SOA.

A write that stores an RRset identical to the one it replaces (the materialiser rebuilds
whole owners) changes nothing and drops nothing.

Cost of a hit: read the header and question, one dict lookup, one integer added to (the
response's own hit count, moved into the query counters when the response is dropped),
and one join of the response bytes: about 2 µs on a small VM. Size: ``max_entries``
responses (about 2 KB each), the least recently used evicted first (the clock algorithm,
so a hit does not reorder anything).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from node.dns.answer import Answer
from node.dns.counters import SAMPLE_EVERY, QueryCounters, QueryStatistics
from node.dns.fastpath import (
    SERIAL_SENTINEL,
    QuestionKey,
    Serial,
    StoredResponse,
    find_serial,
    has_plain_name,
    is_tcp,
    read_query,
)
from node.dns.query import AnswerConfig, Reply, reply_to
from node.zones.index import Change, Facet, Read, ZoneTable

__all__ = ["DEFAULT_MAX_ENTRIES", "AnswerCache", "CacheStatistics"]

DEFAULT_MAX_ENTRIES = 50_000

Dependency = tuple[bytes, int]
"""A ``Read`` with the name as lower-cased label bytes: cheap to hash. Two names that map
to the same bytes (labels containing dots) only make a write drop a little more."""


class _Dependents(set[QuestionKey]):
    """The keys of the responses that made one read; a response holds these sets
    themselves, so it costs a pointer per read, not a copy of the read."""

    __slots__ = ("dependency",)

    def __init__(self, dependency: Dependency) -> None:
        super().__init__()
        self.dependency = dependency


_SERIAL = 0x20000
"""Pseudo-read: the response holds a zone's SOA serial in bytes that are not patched."""

_TC = 0x02  # in the third header byte
_SOA = dns.rdatatype.SOA
_DNAME = dns.rdatatype.DNAME


@dataclass(frozen=True)
class CacheStatistics:
    entries: int
    max_entries: int
    hits: int
    misses: int
    """Queries the fast path read but found no usable response for; each stores one."""
    bypassed: int
    """Queries answered by the full path alone: unusual shape, or an uncacheable result."""
    invalidations: int
    """Responses dropped because a write changed something they read."""
    evictions: int


class AnswerCache:
    """A responder (``respond(wire, tcp)``) with a cache of rendered responses."""

    def __init__(
        self, zones: ZoneTable, config: AnswerConfig, *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.zones = zones
        self.config = config
        self.max_entries = max_entries
        self.misses = 0
        self.bypassed = 0
        self.invalidations = 0
        self.evictions = 0
        self._counters = QueryCounters()
        self._dropped_hits = 0
        self._until_sample = SAMPLE_EVERY
        self._udp_payload = config.udp_payload
        self._responses: OrderedDict[QuestionKey, StoredResponse] = OrderedDict()
        self._dependencies: dict[QuestionKey, tuple[_Dependents, ...]] = {}
        self._dependents: dict[Dependency, _Dependents] = {}
        self._serials: dict[bytes, Serial] = {}
        self._sentinels: dict[bytes, tuple[dns.rdata.Rdata, dns.rrset.RRset]] = {}
        zones.watch(self)

    def respond(self, wire: bytes, tcp: bool) -> bytes | None:
        """The response to one DNS message, as ``query.respond`` would render it."""
        self._until_sample -= 1
        if self._until_sample:
            return self._respond(wire, tcp)
        self._until_sample = SAMPLE_EVERY
        start = time.perf_counter_ns()
        response = self._respond(wire, tcp)
        self._counters.observe(time.perf_counter_ns() - start)
        return response

    def cached(self, wire: bytes, tcp: bool) -> bytes | None:
        """What a hit would send for ``wire``, without counting it; None when not stored."""
        parsed = read_query(wire, tcp, self._udp_payload)
        if parsed is None:
            return None
        key, end = parsed
        stored = self._responses.get(key)
        if stored is None or not stored.fits(wire, end):
            return None
        return stored.for_query(wire, end)

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            entries=len(self._responses),
            max_entries=self.max_entries,
            hits=self._dropped_hits + sum(stored.hits for stored in self._responses.values()),
            misses=self.misses,
            bypassed=self.bypassed,
            invalidations=self.invalidations,
            evictions=self.evictions,
        )

    def query_statistics(self) -> QueryStatistics:
        """Every query answered, hits included: their counts are kept per stored response
        (one integer to add to per hit) and moved into the counters when it is dropped."""
        return self._counters.statistics(
            (is_tcp(key), stored.qtype, stored.rcode, stored.hits)
            for key, stored in self._responses.items()
        )

    def _respond(self, wire: bytes, tcp: bool) -> bytes | None:
        parsed = read_query(wire, tcp, self._udp_payload)
        if parsed is None:
            return self._bypass(wire, tcp)
        key, end = parsed
        stored = self._responses.get(key)
        if stored is not None and stored.fits(wire, end):
            stored.hits += 1
            return stored.for_query(wire, end)
        if not has_plain_name(wire, end):
            return self._bypass(wire, tcp)
        with self.zones.recording() as reads:
            reply = reply_to(wire, self.zones, self.config, tcp=tcp)
        if not isinstance(reply, Reply):
            self.bypassed += 1
            self._counters.count(tcp, None, None if reply is None else reply.rcode)
            return None if reply is None else reply.render()
        self.misses += 1
        stored = self._store(key, end, reply, reads)
        self._counters.count(tcp, stored.qtype, stored.rcode)
        return stored.for_query(wire, end)

    def _bypass(self, wire: bytes, tcp: bool) -> bytes | None:
        self.bypassed += 1
        reply = reply_to(wire, self.zones, self.config, tcp=tcp)
        if reply is None:
            self._counters.count(tcp, None, None)
            return None
        qtype = reply.question.rdtype if isinstance(reply, Reply) else None
        self._counters.count(tcp, qtype, reply.rcode)
        return reply.render()

    def _store(self, key: QuestionKey, end: int, reply: Reply, reads: list[Read]) -> StoredResponse:
        dependencies = {(_label_key(name), int(what)) for name, what in reads}
        blank = dataclasses.replace(reply, query_id=0, query_flags=0)
        answer = reply.answer
        soas = self._apex_soas(answer)
        rendered: bytes | None = None
        serial_at: int | None = None
        serial: Serial | None = None
        if len(soas) == 1:
            soa = soas[0]
            marked = _swapped(answer, soa, self._marked(soa))
            rendered = dataclasses.replace(blank, answer=marked).render()
            if not rendered[2] & _TC:  # a truncated response holds no records
                serial_at = find_serial(rendered, end)
                if serial_at is None:
                    rendered = None
                else:
                    serial = self._serial(_label_key(soa.name), soa[0].serial)
        if rendered is None:
            rendered = blank.render()
            dependencies.update((_label_key(soa.name), _SERIAL) for soa in soas)
        stored = StoredResponse(
            rendered,
            end,
            int(reply.question.rdtype),
            int(answer.rcode),
            serial_at=serial_at,
            serial=serial,
            exact_question=any(rrset.rdtype == _DNAME for rrset in answer.answer),
        )
        self._remove(key)
        self._responses[key] = stored
        self._dependencies[key] = tuple(
            self._depend(key, dependency) for dependency in dependencies
        )
        if len(self._responses) > self.max_entries:
            self._evict()
        return stored

    def _evict(self) -> None:
        """Drop the least recently used response, by the clock algorithm: one sent since it
        was last looked at goes to the back instead, so a hit costs no reordering. The
        response just stored is never the one dropped; if every other was sent, the oldest
        goes anyway."""
        used: list[QuestionKey] = []
        older = itertools.islice(self._responses.items(), len(self._responses) - 1)
        for key, stored in older:
            if stored.hits == stored.seen:
                victim = key
                break
            stored.seen = stored.hits
            used.append(key)
        else:
            victim = used[0]
        for key in used:
            self._responses.move_to_end(key)
        self._remove(victim)
        self.evictions += 1

    def _apex_soas(self, answer: Answer) -> list[dns.rrset.RRset]:
        """The served zones' own SOA RRsets in the answer (one at most, in practice).

        A SOA stored at another name is plain data, read and invalidated like any other.
        """
        return [
            rrset
            for rrset in (*answer.answer, *answer.authority)
            if rrset.rdtype == _SOA and _is_apex_soa(self.zones, rrset)
        ]

    def _marked(self, soa: dns.rrset.RRset) -> dns.rrset.RRset:
        """``soa`` with the sentinel serial. Building one costs about as much as rendering
        a response, so the latest one per zone is kept."""
        origin = _label_key(soa.name)
        kept = self._sentinels.get(origin)
        if kept is None or kept[0] is not soa[0]:
            marked = dns.rrset.from_rdata(soa.name, soa.ttl, soa[0].replace(serial=SERIAL_SENTINEL))
            kept = self._sentinels[origin] = (soa[0], marked)
        if kept[1].ttl == soa.ttl:
            return kept[1]
        marked = copy.copy(kept[1])
        marked.ttl = soa.ttl
        return marked

    def _serial(self, origin: bytes, value: int) -> Serial:
        serial = self._serials.get(origin)
        if serial is None:
            serial = self._serials[origin] = Serial(value)
        else:
            serial.wire = value.to_bytes(4)
        return serial

    def rrset_changed(self, change: Change) -> None:
        old, new = change.old, change.new
        if old is not None and new is not None:
            # First the cheap test that catches every write's serial bump; rendering two
            # SOA records to compare them costs more than the rest of an apex refresh.
            if _is_serial_change(change, old, new):
                if old[0].serial == new[0].serial:
                    return
                origin = _label_key(change.name)
                serial = self._serials.get(origin)
                if serial is not None:
                    serial.wire = new[0].serial.to_bytes(4)
                kept = self._sentinels.get(origin)
                if kept is not None and kept[0] is old[0]:  # only the serial differs
                    self._sentinels[origin] = (new[0], kept[1])
                self._invalidate((origin, _SERIAL))
                return
            if _same_rendering(old, new):
                return
        for name, what in change.reads():
            self._invalidate((_label_key(name), int(what)))

    def zone_changed(self, origin: dns.name.Name) -> None:
        key = _label_key(origin)
        self._serials.pop(key, None)
        self._sentinels.pop(key, None)
        self._invalidate((key, Facet.ZONE))

    def _depend(self, key: QuestionKey, dependency: Dependency) -> _Dependents:
        keys = self._dependents.get(dependency)
        if keys is None:
            keys = self._dependents[dependency] = _Dependents(dependency)
        keys.add(key)
        return keys

    def _invalidate(self, dependency: Dependency) -> None:
        keys = self._dependents.pop(dependency, None)
        if keys:
            dropped = list(keys)  # removing a response empties the set as it goes
            for key in dropped:
                self._remove(key)
            self.invalidations += len(dropped)

    def _remove(self, key: QuestionKey) -> None:
        stored = self._responses.pop(key, None)
        if stored is None:
            return
        if stored.hits:
            self._dropped_hits += stored.hits
            self._counters.count(is_tcp(key), stored.qtype, stored.rcode, stored.hits)
        for keys in self._dependencies.pop(key):
            keys.discard(key)
            if not keys and self._dependents.get(keys.dependency) is keys:
                del self._dependents[keys.dependency]


def _label_key(name: dns.name.Name) -> bytes:
    return b".".join(name.labels).lower()


def _is_apex_soa(zones: ZoneTable, rrset: dns.rrset.RRset) -> bool:
    zone = zones.get(rrset.name)
    current = None if zone is None else zone.get(zone.origin, _SOA)
    # A negative answer's SOA is a copy with another TTL, sharing the rdata.
    return current is not None and len(rrset) == 1 and rrset[0] is current[0]


def _swapped(answer: Answer, old: dns.rrset.RRset, new: dns.rrset.RRset) -> Answer:
    """``answer`` with ``new`` in place of ``old`` in the answer and authority sections."""

    def swap(rrsets: tuple[dns.rrset.RRset, ...]) -> tuple[dns.rrset.RRset, ...]:
        return tuple(new if rrset is old else rrset for rrset in rrsets)

    return dataclasses.replace(answer, answer=swap(answer.answer), authority=swap(answer.authority))


def _rdata_wires(rrset: dns.rrset.RRset) -> list[bytes]:
    return [rdata.to_wire() for rdata in rrset]


def _same_rendering(old: dns.rrset.RRset, new: dns.rrset.RRset) -> bool:
    """Whether the two RRsets render to the same bytes (owner spelling, TTL, rdata order)."""
    return (
        old.name.labels == new.name.labels
        and old.ttl == new.ttl
        and old.covers == new.covers
        and _rdata_wires(old) == _rdata_wires(new)
    )


def _is_serial_change(change: Change, old: dns.rrset.RRset, new: dns.rrset.RRset) -> bool:
    """Whether ``change`` is of the apex SOA, and only of its serial."""

    def without_serial(rrset: dns.rrset.RRset) -> tuple[object, ...]:
        soa = rrset[0]  # names by their labels: a change of case is a change of rendering
        return (soa.mname.labels, soa.rname.labels, soa.refresh, soa.retry, soa.expire, soa.minimum)

    return (
        change.rdtype == _SOA
        and change.name == change.zone.origin
        and len(old) == len(new) == 1
        and old.name.labels == new.name.labels
        and old.ttl == new.ttl
        and without_serial(old) == without_serial(new)
    )
