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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from node.registers import Register, Registers
from node.zones.index import Zone, ZoneTable
from protocol.statekeys import StateKey, StateKeyError, parse_key

SERIAL_MODULUS = 1 << 32
_NOT_BESIDE_CNAME_EXEMPT = frozenset(
    {dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3}
)


def zone_serial(serials: Iterable[Mapping[str, int]]) -> int:
    base = 0
    count = 0
    for value in serials:
        base = max(base, value["base"])
        count += value["count"]
    return (base + count) % SERIAL_MODULUS


@dataclass
class _ZoneKeys:
    """The register keys of one zone's current generation, indexed for rebuilding."""

    gen: int
    live: bool
    ttl: int
    by_owner: dict[str, set[str]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)


class Materialiser:
    def __init__(self, registers: Registers, table: ZoneTable) -> None:
        self.registers = registers
        self.table = table
        self._zones: dict[str, _ZoneKeys] = {}

    def zone_generation(self, zone: str) -> _ZoneKeys | None:
        return self._zones.get(zone)

    def serial(self, zone: str) -> int:
        keys = self._zones[zone]
        return zone_serial(self._serial_values(keys))

    def _serial_values(self, keys: _ZoneKeys) -> list[Mapping[str, int]]:
        values = (self.registers.value(k) for k in keys.serials)
        return [v for v in values if isinstance(v, dict)]

    def owner_keys(self, zone: str, owner: str) -> set[str]:
        keys = self._zones.get(zone)
        return set() if keys is None else set(keys.by_owner.get(owner, ()))

    def dead_keys(self, changes: Mapping[str, Register]) -> set[str]:
        """Keys that a change of zone generation kills, in the registers or in ``changes``."""
        gens: dict[str, int] = {z: k.gen for z, k in self._zones.items()}
        for key, reg in changes.items():
            if key.startswith("zone ") and isinstance(reg.value, dict):
                gens[key[5:]] = reg.value["gen"]
        dead: set[str] = set()
        for key in changes:
            parsed = _zone_record_key(key)
            if parsed is not None and parsed.gen < gens.get(parsed.zone, 0):
                dead.add(key)
        for zone, keys in self._zones.items():
            if gens[zone] != keys.gen:
                dead.update(k for owner in keys.by_owner.values() for k in owner)
                dead.update(keys.serials)
        return dead

    def rebuild(self) -> None:
        """Build every zone from the registers (at start-up)."""
        self._zones.clear()
        for zone in list(self.table):
            self.table.drop(zone.origin)
        self.apply({key: reg for key, reg in self.registers.items()})

    def apply(self, changes: Mapping[str, Register]) -> None:
        """Update the zone table after ``changes`` were committed to the registers."""
        dirty: dict[str, set[str]] = {}
        for key, reg in changes.items():
            if key.startswith("zone ") and isinstance(reg.value, dict):
                zone = key[5:]
                gen, live, ttl = reg.value["gen"], bool(reg.value["live"]), reg.value["ttl"]
                keys = self._zones.get(zone)
                if keys is None or keys.gen != gen:
                    self._zones[zone] = _ZoneKeys(gen, live, ttl)
                    self.table.drop(dns.name.from_text(zone))
                else:
                    keys.live, keys.ttl = live, ttl
                dirty[zone] = set(self._zones[zone].by_owner)
        for key in changes:
            parsed = _zone_record_key(key)
            if parsed is None:
                continue
            keys = self._zones.get(parsed.zone)
            if keys is None or parsed.gen != keys.gen:
                continue
            if parsed.kind == "serial":
                keys.serials.add(key)
            else:
                keys.by_owner.setdefault(parsed.owner, set()).add(key)
            dirty.setdefault(parsed.zone, set()).add(parsed.owner)
        for zone, owners in dirty.items():
            self._refresh_zone(zone, owners)

    def _refresh_zone(self, zone_text: str, owners: set[str]) -> None:
        keys = self._zones[zone_text]
        origin = dns.name.from_text(zone_text)
        zone = self.table.get(origin)
        if not keys.live:
            self.table.drop(origin)
            return
        if zone is None:
            zone = Zone(origin)
            owners = set(keys.by_owner)
        for owner in owners:
            self._refresh_owner(zone, keys, owner)
        self._refresh_apex(zone, keys)
        if zone.get(origin, dns.rdatatype.SOA) is None:
            self.table.drop(origin)
        else:
            self.table.add(zone)

    def rrsets_at(self, keys: _ZoneKeys, owner: str) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset]:
        """The stored RRsets at one owner, before normalisation."""
        name = dns.name.from_text(owner)
        rdatas: dict[str, list[str]] = {}
        ttls: dict[str, int] = {}
        for key in keys.by_owner.get(owner, ()):
            value = self.registers.value(key)
            if not isinstance(value, dict):
                continue
            parsed = parse_key(key)
            if parsed.kind == "ttl":
                ttls[parsed.rdtype] = value["ttl"]
                continue
            if parsed.kind == "rrset":
                ttls[parsed.rdtype] = value["ttl"]
                rdatas.setdefault(parsed.rdtype, []).extend(value["rdata"])
            else:
                rdatas.setdefault(parsed.rdtype, []).append(value["rdata"])
        result: dict[dns.rdatatype.RdataType, dns.rrset.RRset] = {}
        for type_text, texts in rdatas.items():
            rdtype = dns.rdatatype.from_text(type_text)
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
            ttl = ttls.get(type_text, keys.ttl)
            parsed = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, text) for text in texts]
            for rdata in sorted(parsed):  # canonical order: equal data, equal bytes everywhere
                rrset.add(rdata, ttl)
            result[rdtype] = rrset
        return result

    def _refresh_owner(self, zone: Zone, keys: _ZoneKeys, owner: str) -> None:
        name = dns.name.from_text(owner)
        stored = self.rrsets_at(keys, owner)
        if dns.rdatatype.CNAME in stored and set(stored) - _NOT_BESIDE_CNAME_EXEMPT:
            del stored[dns.rdatatype.CNAME]
        for rdtype in list((zone.node(name) or {}).keys()):
            if rdtype not in stored:
                zone.remove(name, rdtype)
        for rrset in stored.values():
            zone.put(rrset)

    def _refresh_apex(self, zone: Zone, keys: _ZoneKeys) -> None:
        origin = zone.origin
        apex = self.rrsets_at(keys, origin.to_text())
        soa = apex.get(dns.rdatatype.SOA)
        if soa is None:
            return
        first = soa[0]
        assert isinstance(first, dns.rdtypes.ANY.SOA.SOA)
        served = first.replace(serial=zone_serial(self._serial_values(keys)))
        zone.put(dns.rrset.from_rdata_list(origin, soa.ttl, [served]))
        if dns.rdatatype.NS not in apex:
            ns = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, first.mname.to_text())
            zone.put(dns.rrset.from_rdata_list(origin, soa.ttl, [ns]))


def _zone_record_key(key: str) -> StateKey | None:
    if not key.startswith(("rr ", "ttl ", "rrset ", "serial ")):
        return None
    try:
        return parse_key(key)
    except StateKeyError:
        return None
