"""From replicated registers to the served zones.

Theory of operation: registers hold records one by one (see protocol.statekeys); DNS
needs whole RRsets. After each commit the materialiser rebuilds only the owner names whose
registers changed and puts the result into the ``ZoneTable``. Rebuilding a whole owner,
rather than one RRset, is what lets ``normalise`` see every type at the name.

``normalise`` makes concurrent, individually valid writes serve as valid DNS, the same way
on every node (it is a function of the registers only):

- a CNAME that shares its owner with other data (RFC 1034 §3.6.2) is not served; the
  other data is;
- an apex left without NS records is served with one NS: the SOA MNAME;
- a zone without a SOA is not served at all.

The SOA's serial is not stored: it is B + Σ C[o] (mod 2³²) from the zone's ``serial``
registers (see docs/protocol.md), and replaces the serial field of the stored SOA.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from node.registers import Register, Registers
from node.zones.index import Zone, ZoneTable
from node.zones.served import address_rdata, with_serial
from protocol.canonical import JSONValue
from protocol.statekeys import StateKey, StateKeyError, parse_key

SERIAL_MODULUS = 1 << 32
log = logging.getLogger("peer53.zones")
_NOT_BESIDE_CNAME_EXEMPT = frozenset({dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC})


def owner_name(owner: str) -> dns.name.Name:
    """A name (an owner or a zone) from a state key. Keys hold canonical absolute text, so most
    need no escape or IDNA handling, and splitting them costs a third of ``from_text``."""
    if owner != "." and owner.endswith(".") and owner.isascii() and "\\" not in owner:
        return dns.name.Name(owner.encode().split(b"."))
    return dns.name.from_text(owner)


@functools.lru_cache(maxsize=4096)
def _origin(zone_text: str) -> dns.name.Name:
    """A zone's origin from its register key: parsed at every write otherwise."""
    return owner_name(zone_text)


def zone_serial(serials: Iterable[Mapping[str, int]]) -> int:
    base = 0
    count = 0
    for value in serials:
        base = max(base, value["base"])
        count += value["count"]
    return (base + count) % SERIAL_MODULUS


@dataclass
class ZoneKeys:
    """The register keys of one zone's current generation, indexed for rebuilding."""

    gen: int
    live: bool
    ttl: int
    last_serial: int | None = None  # the serial served before the zone was deleted
    by_owner: dict[str, dict[str, StateKey]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)

    def index(self, key: str, parsed: StateKey) -> None:
        if parsed.kind == "serial":
            self.serials.add(key)
        else:
            self.by_owner.setdefault(parsed.owner, {})[key] = parsed

    def unindex(self, key: str, parsed: StateKey) -> None:
        if parsed.kind == "serial":
            self.serials.discard(key)
            return
        held = self.by_owner.get(parsed.owner)
        if held is not None:
            held.pop(key, None)
            if not held:
                del self.by_owner[parsed.owner]

    def all_keys(self) -> Iterator[str]:
        for owner in self.by_owner.values():
            yield from owner
        yield from self.serials


ValueOf = Callable[[str], JSONValue]


@dataclass(frozen=True)
class Generations:
    """Zones that start a new generation in a batch, built off the trio thread while DNS
    keeps answering from the old ones: from the batch, and from the records that arrived
    ahead of it (the registers do not change while a batch commits).
    """

    keys: dict[str, ZoneKeys]
    zones: dict[str, Zone | None]


class Materialiser:
    def __init__(self, registers: Registers, table: ZoneTable) -> None:
        self.registers = registers
        self.table = table
        self._zones: dict[str, ZoneKeys] = {}
        self._parsed: dict[tuple[dns.rdatatype.RdataType, str], dns.rdata.Rdata] = {}
        # Keys parsed while one change is prepared, committed and applied: each step reads
        # them again. Cleared, like ``_parsed``, once the change is applied.
        self._keys: dict[str, StateKey | None] = {}
        # Record keys stored for a generation of their zone that has not started here:
        # anti-entropy may bring a generation's records in one round and the zone register
        # that starts it in a later one (causal delivery never does). The generation is
        # built with them when it starts.
        self._ahead: dict[str, dict[int, set[str]]] = {}  # zone -> generation -> keys

    def _record_key(self, key: str) -> StateKey | None:
        try:
            return self._keys[key]
        except KeyError:
            parsed = self._keys[key] = _zone_record_key(key)
            return parsed

    def zone_generation(self, zone: str) -> ZoneKeys | None:
        return self._zones.get(zone)

    def serial(self, zone: str) -> int:
        return zone_serial(self._serial_values(self._zones[zone], self.registers.value))

    @staticmethod
    def _serial_values(keys: ZoneKeys, value_of: ValueOf) -> list[Mapping[str, int]]:
        values = (value_of(k) for k in keys.serials)
        return [v for v in values if isinstance(v, dict)]

    def owner_keys(self, zone: str, owner: str) -> set[str]:
        keys = self._zones.get(zone)
        return set() if keys is None else set(keys.by_owner.get(owner, ()))

    def _new_generations(self, changes: Mapping[str, Register]) -> dict[str, ZoneKeys]:
        fresh: dict[str, ZoneKeys] = {}
        for key, reg in changes.items():
            if key.startswith("zone ") and isinstance(reg.value, dict):
                zone, gen = key[5:], reg.value["gen"]
                current = self._zones.get(zone)
                if current is None or current.gen != gen:
                    value = reg.value
                    fresh[zone] = ZoneKeys(
                        gen, bool(value["live"]), value["ttl"], value.get("serial")
                    )
        return fresh

    def dead_keys(self, changes: Mapping[str, Register]) -> set[str]:
        """Keys that a change of zone generation kills, in the registers or in ``changes``."""
        fresh = self._new_generations(changes)
        dead: set[str] = set()
        for key in changes:
            parsed = self._record_key(key)
            if parsed is None:
                continue
            keys = fresh.get(parsed.zone) or self._zones.get(parsed.zone)
            if keys is None or parsed.gen < keys.gen:
                dead.add(key)
        for zone, keys in fresh.items():
            old = self._zones.get(zone)
            if old is not None:
                dead.update(old.all_keys())
            for gen, held in self._ahead.get(zone, {}).items():
                if gen < keys.gen:
                    dead.update(held)  # stored ahead of a generation that never started
        return dead

    def build_generations(self, changes: Mapping[str, Register]) -> Generations:
        """Build the zones that ``changes`` start anew, from ``changes`` and the records
        that arrived ahead of them (``_ahead``), while DNS answers from the old zones."""
        fresh = self._new_generations(changes)
        stored = [
            k for zone, keys in fresh.items() for k in self._ahead.get(zone, {}).get(keys.gen, ())
        ]
        for key in [*changes, *stored]:
            parsed = self._record_key(key)
            if parsed is not None and parsed.zone in fresh and parsed.gen == fresh[parsed.zone].gen:
                fresh[parsed.zone].index(key, parsed)

        def value_of(key: str) -> JSONValue:
            reg = changes.get(key)
            return self.registers.value(key) if reg is None else reg.value

        zones: dict[str, Zone | None] = {}
        for zone_text, keys in fresh.items():
            zone = Zone(_origin(zone_text)) if keys.live else None
            if zone is not None:
                for owner in keys.by_owner:
                    self._refresh_owner(zone, keys, owner, value_of)
                self._refresh_apex(zone, keys, value_of)
            zones[zone_text] = zone
        return Generations(fresh, zones)

    def rebuild(self) -> None:
        """Build every zone from the registers (at start-up)."""
        self._zones.clear()
        self._ahead.clear()
        for zone in list(self.table):
            self.table.drop(zone.origin)
        changes = dict(self.registers.items())
        self.apply(changes, self.build_generations(changes))

    def apply(
        self,
        changes: Mapping[str, Register],
        generations: Generations,
        removed: Iterable[str] = (),
        purged: Iterable[str] = (),
    ) -> None:
        """Update the zone table after ``changes`` were committed to the registers and
        ``removed`` keys were dropped from them (a dead generation's, or damaged ones).
        ``purged`` tombstones were dropped too; they served nothing, so nothing changes."""
        for key in purged:
            self._unindex(key)
        removed = [k for k in removed if k not in changes]
        if any(k.startswith("zone ") and k[5:] in self._zones for k in removed):
            self.rebuild()  # only anti-entropy drops a zone register: rare, and rebuilt whole
            return
        for zone_text, keys in generations.keys.items():
            self._zones[zone_text] = keys
            self._install(zone_text, generations.zones[zone_text])
            held = self._ahead.get(zone_text, {})
            for gen in [g for g in held if g <= keys.gen]:
                del held[gen]  # built in, or dead
        dirty: dict[str, set[str]] = {}
        for key, reg in changes.items():
            if key.startswith("zone ") and key[5:] not in generations.keys:
                keys = self._zones[key[5:]]
                assert isinstance(reg.value, dict)
                keys.live, keys.ttl = bool(reg.value["live"]), reg.value["ttl"]
                keys.last_serial = reg.value.get("serial")
                dirty[key[5:]] = set(keys.by_owner)
        for key in [*changes, *removed]:
            parsed = self._record_key(key)
            if parsed is None:
                continue
            current = self._zones.get(parsed.zone)  # a generation started here: built whole
            if current is None or parsed.gen != current.gen or parsed.zone in generations.keys:
                if current is not None and parsed.gen > current.gen:
                    self._note_ahead(key, parsed, key in changes)
                continue
            if key in changes:
                current.index(key, parsed)
            else:
                current.unindex(key, parsed)
            owners = dirty.setdefault(parsed.zone, set())
            if parsed.kind != "serial":  # the apex is refreshed with every zone anyway
                owners.add(parsed.owner)
        for zone_text, owners in dirty.items():
            self._refresh(zone_text, owners)
        self._parsed.clear()
        self._keys.clear()

    def _note_ahead(self, key: str, parsed: StateKey, stored: bool) -> None:
        if stored:
            self._ahead.setdefault(parsed.zone, {}).setdefault(parsed.gen, set()).add(key)
        else:
            self._ahead.get(parsed.zone, {}).get(parsed.gen, set()).discard(key)

    def _unindex(self, key: str) -> None:
        parsed = self._record_key(key)
        current = None if parsed is None else self._zones.get(parsed.zone)
        if parsed is not None and current is not None and parsed.gen == current.gen:
            current.unindex(key, parsed)
        elif parsed is not None and current is not None and parsed.gen > current.gen:
            self._note_ahead(key, parsed, False)

    def _install(self, zone_text: str, zone: Zone | None) -> None:
        origin = _origin(zone_text)
        if zone is None or zone.get(origin, dns.rdatatype.SOA) is None:
            self.table.drop(origin)
        else:
            self.table.add(zone)

    def _refresh(self, zone_text: str, owners: set[str]) -> None:
        keys = self._zones[zone_text]
        origin = _origin(zone_text)
        zone = self.table.get(origin)
        if not keys.live:
            self.table.drop(origin)
            return
        if zone is None:
            zone = Zone(origin)
            owners = set(keys.by_owner)
        value_of = self.registers.value
        for owner in owners:
            self._refresh_owner(zone, keys, owner, value_of)
        self._refresh_apex(zone, keys, value_of)
        self._install(zone_text, zone)

    def rrsets_at(
        self, keys: ZoneKeys, owner: str, name: dns.name.Name, value_of: ValueOf
    ) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset]:
        """The stored RRsets at one owner, before normalisation."""
        rdatas: dict[str, list[str]] = {}
        ttls: dict[str, int] = {}
        for key, parsed in keys.by_owner.get(owner, {}).items():
            value = value_of(key)
            if not isinstance(value, dict):
                continue
            if parsed.kind == "ttl":
                ttls[parsed.rdtype] = value["ttl"]
            elif parsed.kind == "rrset":
                ttls[parsed.rdtype] = value["ttl"]
                rdatas.setdefault(parsed.rdtype, []).extend(value["rdata"])
            else:
                rdatas.setdefault(parsed.rdtype, []).append(value["rdata"])
        result: dict[dns.rdatatype.RdataType, dns.rrset.RRset] = {}
        for type_text, texts in rdatas.items():
            rdtype = dns.rdatatype.from_text(type_text)
            rdata_list = [rd for rd in (self._rdata(rdtype, t) for t in texts) if rd is not None]
            if not rdata_list:
                continue
            # Canonical order: equal data gives equal bytes on every node.
            result[rdtype] = dns.rrset.from_rdata_list(
                name, ttls.get(type_text, keys.ttl), sorted(rdata_list)
            )
        return result

    def remember(self, rrset: dns.rrset.RRset, texts: Iterable[str]) -> None:
        """Keep the parsed form of rdata a local write is storing as text.

        The zone built from the write then needs no second parse; for a 100,000-record
        import that is most of the build time. The cache lives for one write only.
        """
        for rdata, text in zip(rrset, texts, strict=True):
            self._parsed[(rrset.rdtype, text)] = rdata

    def _rdata(self, rdtype: dns.rdatatype.RdataType, text: str) -> dns.rdata.Rdata | None:
        """Parse stored rdata; a value that does not parse is not served (and is logged)."""
        known = self._parsed.get((rdtype, text))
        if known is not None:
            return known
        try:
            address = address_rdata(rdtype, text)
            if address is not None:
                return address
            return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        except dns.exception.DNSException as exc:
            log.warning("not serving %s rdata %r: %s", dns.rdatatype.to_text(rdtype), text, exc)
            return None

    def _refresh_owner(self, zone: Zone, keys: ZoneKeys, owner: str, value_of: ValueOf) -> None:
        try:
            name = owner_name(owner)
        except dns.exception.DNSException:
            log.warning("not serving records at %r: not a domain name", owner)
            return
        if not name.is_subdomain(zone.origin):
            return
        stored = self.rrsets_at(keys, owner, name, value_of)
        if dns.rdatatype.CNAME in stored and set(stored) - _NOT_BESIDE_CNAME_EXEMPT:
            del stored[dns.rdatatype.CNAME]
        for rdtype in list((zone.node(name) or {}).keys()):
            if rdtype not in stored:
                zone.remove(name, rdtype)
        for rrset in stored.values():
            zone.put(rrset)

    def _refresh_apex(self, zone: Zone, keys: ZoneKeys, value_of: ValueOf) -> None:
        origin = zone.origin
        soa = zone.get(origin, dns.rdatatype.SOA)
        if soa is None:
            return
        first = soa[0]
        assert isinstance(first, dns.rdtypes.ANY.SOA.SOA)
        served = with_serial(first, zone_serial(self._serial_values(keys, value_of)))
        zone.put(dns.rrset.from_rdata_list(origin, soa.ttl, [served]))
        if zone.get(origin, dns.rdatatype.NS) is None:
            ns = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, first.mname.to_text())
            zone.put(dns.rrset.from_rdata_list(origin, soa.ttl, [ns]))


def _zone_record_key(key: str) -> StateKey | None:
    if not key.startswith(("rr ", "ttl ", "rrset ", "serial ")):
        return None
    try:
        return parse_key(key)
    except StateKeyError:
        return None
