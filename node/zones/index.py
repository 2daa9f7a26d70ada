"""The in-memory index that DNS answers come from.

Theory of operation: the store applies events to SQLite and, in the same step, to this
index; the query path reads only from here. A zone holds whole RRsets keyed by absolute
owner name and type. Besides the data it keeps, per name, how many owners with data lie at
or below it. A name with a count but no RRsets is an empty non-terminal (RFC 8020: it
exists, so queries for it get NODATA, not NXDOMAIN), and wildcard synthesis must not fire
below it.

dnspython's ``Name`` compares and hashes case-insensitively, so lookups work for any case
of the query name without lower-casing on the hot path.

Watching: a cache of rendered answers must learn which answers a write affects. While
``ZoneTable.recording()`` is open, every read of the table and of its zones is logged as a
``Read``: one RRset type at a name, or one of the ``Facet``s below. An answer is a function
of the results of the reads made while computing it, so it stays valid until one of those
results changes. Every change to an installed zone and every zone added, replaced or dropped
is reported to the table's watchers, named by the reads whose results it changes. Zones
that are not installed in a table (being built, or validating a write) report nothing.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

RRsets = Mapping[dns.rdatatype.RdataType, dns.rrset.RRset]


class Facet(enum.IntEnum):
    """What a read learnt about a name, other than one RRset (recorded by its type number)."""

    NODE = 0x10000
    """Whether the name owns any RRset."""
    EXISTS = 0x10001
    """Whether the name exists: owns data or is an empty non-terminal."""
    TYPES = 0x10002
    """Which types the name owns (ANY, or any whole-node walk)."""
    ZONE = 0x10003
    """Whether a zone is served with the name as its origin."""


Read = tuple[dns.name.Name, int]
"""A name and an RRset type number or a ``Facet``."""


@dataclass(frozen=True)
class Change:
    """One RRset stored, replaced or removed in an installed zone."""

    zone: Zone
    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    old: dns.rrset.RRset | None
    new: dns.rrset.RRset | None
    existence: tuple[Read, ...]
    """NODE and EXISTS reads whose result flipped (a name or an empty non-terminal came or went)."""

    def reads(self) -> Iterator[Read]:
        """Every read whose result this change can alter."""
        yield self.name, self.rdtype
        yield self.name, Facet.TYPES
        yield from self.existence


class ZoneWatcher(Protocol):
    def rrset_changed(self, change: Change) -> None: ...

    def zone_changed(self, origin: dns.name.Name) -> None:
        """A zone was added, replaced (a new generation) or dropped at ``origin``."""


class _Hooks:
    """Shared by a table and the zones installed in it: the watchers and the read log."""

    def __init__(self) -> None:
        # Weak references in a plain list: a WeakSet's iteration guard costs about as much
        # as the rest of storing an RRset, and every stored RRset is reported.
        self._watchers: list[weakref.ref[ZoneWatcher]] = []
        self.reads: list[Read] | None = None

    def watch(self, watcher: ZoneWatcher) -> None:
        self._watchers = [w for w in self._watchers if w() is not None] + [weakref.ref(watcher)]

    def _live(self) -> Iterator[ZoneWatcher]:
        for ref in self._watchers:
            watcher = ref()
            if watcher is not None:
                yield watcher

    def rrset_changed(self, change: Change) -> None:
        for watcher in self._live():
            watcher.rrset_changed(change)

    def zone_changed(self, origin: dns.name.Name) -> None:
        for watcher in self._live():
            watcher.zone_changed(origin)


class _RecordedNode(Mapping[dns.rdatatype.RdataType, dns.rrset.RRset]):
    """A node whose type lookups are logged, so a write of one type at a busy name (the
    apex, above all) affects only the answers that looked at that type."""

    def __init__(self, name: dns.name.Name, node: RRsets, reads: list[Read]) -> None:
        self._name = name
        self._node = node
        self._reads = reads

    def __getitem__(self, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset:
        self._reads.append((self._name, rdtype))
        return self._node[rdtype]

    def get(self, rdtype: dns.rdatatype.RdataType, default: Any = None) -> Any:
        self._reads.append((self._name, rdtype))
        return self._node.get(rdtype, default)

    def __contains__(self, rdtype: object) -> bool:
        if not isinstance(rdtype, int):
            return False
        self._reads.append((self._name, rdtype))
        return rdtype in self._node

    def __iter__(self) -> Iterator[dns.rdatatype.RdataType]:
        self._reads.append((self._name, Facet.TYPES))
        return iter(self._node)

    def __len__(self) -> int:
        self._reads.append((self._name, Facet.TYPES))
        return len(self._node)


class Zone:
    """One served zone: its RRsets and the set of names that exist in it."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self._rrsets: dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rrset.RRset]] = {}
        self._below: dict[dns.name.Name, int] = {}
        self._rrset_total = 0  # kept as RRsets come and go: counting is per API answer
        self._record_total = 0
        self.version = 0
        self._hooks: _Hooks | None = None

    def node(self, name: dns.name.Name) -> RRsets | None:
        """The RRsets owned by ``name``, or None when it owns none."""
        node = self._rrsets.get(name)
        reads = self._reads()
        if reads is None:
            return node
        reads.append((name, Facet.NODE))
        return None if node is None else _RecordedNode(name, node, reads)

    def get(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        reads = self._reads()
        if reads is not None:
            reads.append((name, rdtype))
        node = self._rrsets.get(name)
        return None if node is None else node.get(rdtype)

    def exists(self, name: dns.name.Name) -> bool:
        """True for names with data and for empty non-terminals."""
        reads = self._reads()
        if reads is not None:
            reads.append((name, Facet.EXISTS))
        return name in self._below

    def _reads(self) -> list[Read] | None:
        """The read log, if one is open. Read once per call: write validation reads zones
        from a worker thread, and the log may close meanwhile (its reads only add to it)."""
        hooks = self._hooks
        return None if hooks is None else hooks.reads

    def put(self, rrset: dns.rrset.RRset) -> None:
        """Store ``rrset`` whole, replacing any RRset of the same owner and type."""
        if not rrset.name.is_subdomain(self.origin):
            raise ValueError(f"{rrset.name} is outside zone {self.origin}")
        if len(rrset) == 0:
            self.remove(rrset.name, rrset.rdtype)
            return
        node = self._rrsets.get(rrset.name)
        existence: tuple[Read, ...] = ()
        if node is None:
            node = self._rrsets[rrset.name] = {}
            existence = ((rrset.name, Facet.NODE), *self._count(rrset.name, +1))
        old = node.get(rrset.rdtype)
        node[rrset.rdtype] = rrset
        self._rrset_total += old is None
        self._record_total += len(rrset) - (0 if old is None else len(old))
        self.version += 1
        if self._hooks is not None:
            self._hooks.rrset_changed(Change(self, rrset.name, rrset.rdtype, old, rrset, existence))

    def remove(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> None:
        node = self._rrsets.get(name)
        if node is None or rdtype not in node:
            return
        old = node.pop(rdtype)
        self._rrset_total -= 1
        self._record_total -= len(old)
        existence: tuple[Read, ...] = ()
        if not node:
            del self._rrsets[name]
            existence = ((name, Facet.NODE), *self._count(name, -1))
        self.version += 1
        if self._hooks is not None:
            self._hooks.rrset_changed(Change(self, name, rdtype, old, None, existence))

    def _count(self, name: dns.name.Name, step: int) -> list[Read]:
        """Add ``step`` to the counts from ``name`` up to the origin; the EXISTS reads of
        names that came into or went out of existence."""
        flipped: list[Read] = []
        below = self._below
        for up in self._up_to_origin(name):
            count = below.get(up, 0) + step
            if count:
                below[up] = count
            else:
                del below[up]
            if count == (1 if step > 0 else 0):
                flipped.append((up, Facet.EXISTS))
        return flipped

    def _up_to_origin(self, name: dns.name.Name) -> Iterator[dns.name.Name]:
        # Counting labels instead of comparing names, and ending on the origin object
        # itself (dict lookups short-cut on identity), keeps big loads fast.
        for remaining in range(len(name) - len(self.origin), 0, -1):
            yield name
            if remaining > 1:
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
        return self._rrset_total

    def record_count(self) -> int:
        return self._record_total


class ZoneTable:
    """All served zones; finds the most specific zone for a name."""

    def __init__(self) -> None:
        self._zones: dict[dns.name.Name, Zone] = {}
        self._hooks = _Hooks()

    def __contains__(self, origin: dns.name.Name) -> bool:
        return origin in self._zones

    def __iter__(self) -> Iterator[Zone]:
        return iter(self._zones.values())

    def __len__(self) -> int:
        return len(self._zones)

    def get(self, origin: dns.name.Name) -> Zone | None:
        return self._zones.get(origin)

    def add(self, zone: Zone) -> None:
        """Serve ``zone``; re-adding the zone already served is no change."""
        old = self._zones.get(zone.origin)
        if old is zone:
            return
        if old is not None:
            old._hooks = None
        zone._hooks = self._hooks
        self._zones[zone.origin] = zone
        self._hooks.zone_changed(zone.origin)

    def drop(self, origin: dns.name.Name) -> None:
        old = self._zones.pop(origin, None)
        if old is not None:
            old._hooks = None
            self._hooks.zone_changed(origin)

    def find(self, qname: dns.name.Name) -> Zone | None:
        """The zone with the longest origin that contains ``qname`` (nested zones)."""
        reads = self._hooks.reads
        name = qname
        while True:
            if reads is not None:
                reads.append((name, Facet.ZONE))
            zone = self._zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root:
                return None
            name = name.parent()

    def watch(self, watcher: ZoneWatcher) -> None:
        """Report changes to ``watcher`` until it is garbage (no unsubscribing to forget)."""
        self._hooks.watch(watcher)

    @contextmanager
    def recording(self) -> Iterator[list[Read]]:
        """Log every read of this table and its zones into the yielded list."""
        if self._hooks.reads is not None:
            raise RuntimeError("reads are already being recorded")
        reads: list[Read] = []
        self._hooks.reads = reads
        try:
            yield reads
        finally:
            self._hooks.reads = None
