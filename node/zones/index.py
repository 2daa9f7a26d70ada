"""The in-memory index that DNS answers come from.

Theory of operation: the store applies events to SQLite and, in the same step, to this
index; the query path reads only from here. A zone holds whole RRsets keyed by absolute
owner name and type. Besides the data it keeps, per name, how many owners with data lie at
or below it. A name with a count but no RRsets is an empty non-terminal (RFC 8020: it
exists, so queries for it get NODATA, not NXDOMAIN), and wildcard synthesis must not fire
below it.

dnspython's ``Name`` compares and hashes case-insensitively, so lookups work for any case
of the query name without lower-casing on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class Zone:
    """One served zone: its RRsets and the set of names that exist in it."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self._rrsets: dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rrset.RRset]] = {}
        self._below: dict[dns.name.Name, int] = {}
        self.version = 0

    def node(self, name: dns.name.Name) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset] | None:
        """The RRsets owned by ``name``, or None when it owns none."""
        return self._rrsets.get(name)

    def get(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        node = self._rrsets.get(name)
        return None if node is None else node.get(rdtype)

    def exists(self, name: dns.name.Name) -> bool:
        """True for names with data and for empty non-terminals."""
        return name in self._below

    def put(self, rrset: dns.rrset.RRset) -> None:
        """Store ``rrset`` whole, replacing any RRset of the same owner and type."""
        if not rrset.name.is_subdomain(self.origin):
            raise ValueError(f"{rrset.name} is outside zone {self.origin}")
        if len(rrset) == 0:
            self.remove(rrset.name, rrset.rdtype)
            return
        node = self._rrsets.get(rrset.name)
        if node is None:
            node = self._rrsets[rrset.name] = {}
            for name in self._up_to_origin(rrset.name):
                self._below[name] = self._below.get(name, 0) + 1
        node[rrset.rdtype] = rrset
        self.version += 1

    def remove(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> None:
        node = self._rrsets.get(name)
        if node is None or rdtype not in node:
            return
        del node[rdtype]
        if not node:
            del self._rrsets[name]
            for up in self._up_to_origin(name):
                count = self._below[up] - 1
                if count:
                    self._below[up] = count
                else:
                    del self._below[up]
        self.version += 1

    def _up_to_origin(self, name: dns.name.Name) -> Iterator[dns.name.Name]:
        # Counting labels instead of comparing names, and ending on the origin object
        # itself (dict lookups short-cut on identity), keeps big loads fast.
        for _ in range(len(name) - len(self.origin)):
            yield name
            name = name.parent()
        yield self.origin

    def names(self) -> list[dns.name.Name]:
        """Owner names with data, in DNSSEC canonical order (RFC 4034 §6.1)."""
        return sorted(self._rrsets)

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset, owners in canonical order, SOA first at the apex."""
        for name in self.names():
            node = self._rrsets[name]
            for rdtype in sorted(node, key=lambda t: (t != dns.rdatatype.SOA, int(t))):
                yield node[rdtype]

    def rrset_count(self) -> int:
        return sum(len(node) for node in self._rrsets.values())

    def record_count(self) -> int:
        return sum(len(r) for node in self._rrsets.values() for r in node.values())


class ZoneTable:
    """All served zones; finds the most specific zone for a name."""

    def __init__(self) -> None:
        self._zones: dict[dns.name.Name, Zone] = {}

    def __contains__(self, origin: dns.name.Name) -> bool:
        return origin in self._zones

    def __iter__(self) -> Iterator[Zone]:
        return iter(self._zones.values())

    def __len__(self) -> int:
        return len(self._zones)

    def get(self, origin: dns.name.Name) -> Zone | None:
        return self._zones.get(origin)

    def add(self, zone: Zone) -> None:
        self._zones[zone.origin] = zone

    def drop(self, origin: dns.name.Name) -> None:
        self._zones.pop(origin, None)

    def find(self, qname: dns.name.Name) -> Zone | None:
        """The zone with the longest origin that contains ``qname`` (nested zones)."""
        name = qname
        while True:
            zone = self._zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root:
                return None
            name = name.parent()
