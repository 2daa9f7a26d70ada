"""What each zone operation writes: pure functions from current state to register writes.

Operations read the registers as the writer sees them and return the writes of one event.
Replacing an RRset tombstones the records the writer saw and writes the new ones, so a
record that another node adds concurrently survives (DESIGN "Data model").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.serial

from node.registers import Registers
from node.zones.materialise import SERIAL_MODULUS, Materialiser
from node.zones.validate import ZoneChange
from protocol.canonical import JSONValue
from protocol.statekeys import (
    SINGLETON_TYPES,
    name_text,
    parse_key,
    rdata_digest,
    rr_key,
    rrset_key,
    serial_key,
    ttl_key,
    type_text,
    zone_key,
)

DEFAULT_ZONE_TTL = 3600
Writes = dict[str, JSONValue]


@dataclass(frozen=True)
class SoaDefaults:
    """RIPE-203 recommendations; the negative TTL (minimum) is kept short."""

    refresh: int = 86400
    retry: int = 7200
    expire: int = 3600000
    minimum: int = 3600


class ZoneNotFound(LookupError):
    pass


class ZoneExists(ValueError):
    pass


class RRsetNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ZoneEditor:
    registers: Registers
    materialiser: Materialiser
    node_id: str

    def _live_gen(self, zone: str) -> int:
        keys = self.materialiser.zone_generation(zone)
        if keys is None or not keys.live:
            raise ZoneNotFound(zone)
        return keys.gen

    def _serial_bump(self, zone: str, gen: int) -> Writes:
        key = serial_key(zone, gen, self.node_id)
        current = self.registers.value(key)
        base, count = (
            (0, 0) if not isinstance(current, dict) else (current["base"], current["count"])
        )
        return {key: {"base": base, "count": count + 1}}

    def _rrset_writes(self, zone: str, gen: int, rrset: dns.rrset.RRset) -> Writes:
        owner, rdtype = name_text(rrset.name), type_text(rrset.rdtype)
        texts = [rd.to_text() for rd in rrset]
        self.materialiser.remember(rrset, texts)
        if rrset.rdtype in SINGLETON_TYPES:
            return {rrset_key(zone, gen, owner, rdtype): {"ttl": rrset.ttl, "rdata": texts}}
        writes: Writes = {
            rr_key(zone, gen, owner, rdtype, rdata_digest(rd)): {"rdata": text}
            for rd, text in zip(rrset, texts, strict=True)
        }
        writes[ttl_key(zone, gen, owner, rdtype)] = {"ttl": rrset.ttl}
        return writes

    def _tombstones(self, zone: str, owner: str, rdtype: str | None) -> Writes:
        """Null out the registers the writer sees for an RRset (or a whole owner)."""
        writes: Writes = {}
        for key in self.materialiser.owner_keys(zone, owner):
            if self.registers.value(key) is None:
                continue
            if rdtype is None or parse_key(key).rdtype == rdtype:
                writes[key] = None
        return writes

    def _previous_serial(self, zone: str) -> int | None:
        keys = self.materialiser.zone_generation(zone)
        if keys is None:
            return None
        return self.materialiser.serial(zone) if keys.live else keys.last_serial

    def _new_generation(self, zone: str, gen: int, ttl: int, wanted_serial: int) -> Writes:
        """The zone register and this node's serial register for a generation's start.

        Serials never go backwards, even across a delete and re-create: secondaries compare
        serials (RFC 1982) and would ignore a zone whose serial fell.
        """
        serial = wanted_serial
        previous = self._previous_serial(zone)
        if previous is not None:
            following = (previous + 1) % SERIAL_MODULUS
            if dns.serial.Serial(following, 32) > dns.serial.Serial(wanted_serial, 32):
                serial = following
        return {
            zone_key(zone): {"gen": gen, "live": True, "ttl": ttl},
            serial_key(zone, gen, self.node_id): {
                "base": (serial - 1) % SERIAL_MODULUS,
                "count": 1,
            },
        }

    def create_zone(
        self, origin: dns.name.Name, ns: Iterable[dns.name.Name], ttl: int, initial_serial: int
    ) -> Writes:
        zone = name_text(origin)
        keys = self.materialiser.zone_generation(zone)
        if keys is not None and keys.live:
            raise ZoneExists(zone)
        # A deleted zone starts a new generation: records a concurrent import wrote into
        # the deleted generation must not come back.
        gen = 0 if keys is None else keys.gen + 1
        hosts = list(ns)
        defaults = SoaDefaults()
        soa = dns.rdtypes.ANY.SOA.SOA(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            hosts[0],
            dns.name.Name([b"hostmaster"]).concatenate(origin),
            0,
            defaults.refresh,
            defaults.retry,
            defaults.expire,
            defaults.minimum,
        )
        ns_rdata = [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, h.to_text()) for h in hosts
        ]
        writes = self._new_generation(zone, gen, ttl, initial_serial)
        for rdatas in ([soa], ns_rdata):
            rrset = dns.rrset.from_rdata_list(origin, ttl, rdatas)
            writes.update(self._rrset_writes(zone, gen, rrset))
        return writes

    def delete_zone(self, origin: dns.name.Name) -> Writes:
        """A new, empty generation marked not live; it remembers the serial last served."""
        zone = name_text(origin)
        gen = self._live_gen(zone)
        keys = self.materialiser.zone_generation(zone)
        assert keys is not None
        return {
            zone_key(zone): {
                "gen": gen + 1,
                "live": False,
                "ttl": keys.ttl,
                "serial": self.materialiser.serial(zone),
            }
        }

    def replace_zone(
        self, origin: dns.name.Name, rrsets: Iterable[dns.rrset.RRset], file_serial: int
    ) -> Writes:
        """A new generation holding exactly ``rrsets``; serial = the file's, unless lower."""
        zone = name_text(origin)
        keys = self.materialiser.zone_generation(zone)
        gen = 0 if keys is None else keys.gen + 1
        ttl = DEFAULT_ZONE_TTL if keys is None else keys.ttl
        writes = self._new_generation(zone, gen, ttl, file_serial)
        for rrset in rrsets:
            writes.update(self._rrset_writes(zone, gen, rrset))
        return writes

    def change_rrsets(self, origin: dns.name.Name, changes: ZoneChange) -> Writes:
        """One event's writes for several RRset replacements and deletions (None) at once."""
        zone = name_text(origin)
        gen = self._live_gen(zone)
        writes: Writes = {}
        for (name, rdtype), rrset in changes.items():
            stale = self._tombstones(zone, name_text(name), type_text(rdtype))
            if rrset is None and not stale:
                raise RRsetNotFound(f"no {type_text(rdtype)} RRset at {name}")
            writes.update(stale)
            if rrset is not None:
                writes.update(self._rrset_writes(zone, gen, rrset))
        writes.update(self._serial_bump(zone, gen))
        return writes
