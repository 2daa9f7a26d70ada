"""Rdata that keeps its wire form, for the record types every write builds anew.

dnspython hashes an rdata by rendering it (each insert into an RRset hashes it), and it
renders an address by parsing its text again. The types here render what they must once,
when they are built, and then hash and render from those bytes. Each is a subclass of
dnspython's own type and holds the same data, so it stays equal, with an equal hash, to a
plain rdata of that type: RRsets and sets may mix the two.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, ClassVar

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA


class ServedSOA(dns.rdtypes.ANY.SOA.SOA):
    """The apex SOA as served, rebuilt at every write since its serial moves: hashing a
    plain one renders both of its names, twice per RRset."""

    __slots__ = ["names_wire"]
    names_wire: bytes  # both names as dnspython hashes them

    def __init__(
        self,
        rdclass: dns.rdataclass.RdataClass,
        rdtype: dns.rdatatype.RdataType,
        mname: dns.name.Name,
        rname: dns.name.Name,
        serial: int,
        refresh: int,
        retry: int,
        expire: int,
        minimum: int,
    ) -> None:
        super().__init__(rdclass, rdtype, mname, rname, serial, refresh, retry, expire, minimum)  # type: ignore[no-untyped-call]
        object.__setattr__(self, "names_wire", _names_wire(self))  # dnspython rdata are immutable

    def __hash__(self) -> int:
        numbers = (self.serial, self.refresh, self.retry, self.expire, self.minimum)
        return hash(self.names_wire + struct.pack("!IIIII", *numbers))


def _names_wire(soa: dns.rdtypes.ANY.SOA.SOA) -> bytes:
    return soa.mname.to_digestable(dns.name.root) + soa.rname.to_digestable(dns.name.root)


_KEPT_SLOTS = [  # every field of an SOA rdata but its serial, as dnspython lists them
    slot
    for cls in dns.rdtypes.ANY.SOA.SOA.__mro__
    for slot in getattr(cls, "__slots__", ())
    if slot != "serial"
]
MAX_SERIAL = 2**32 - 1


def with_serial(soa: dns.rdtypes.ANY.SOA.SOA, serial: int) -> ServedSOA:
    """``soa.replace(serial=...)`` as a copy of ``soa``'s fields, which dnspython checked
    when it was built: its constructor checks each again, and this runs at every write."""
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial {serial} is not a 32-bit unsigned integer")
    served = object.__new__(ServedSOA)
    for slot in _KEPT_SLOTS:
        object.__setattr__(served, slot, getattr(soa, slot))
    object.__setattr__(served, "serial", serial)
    names = soa.names_wire if isinstance(soa, ServedSOA) else _names_wire(soa)
    object.__setattr__(served, "names_wire", names)
    return served


_EMBEDDED_IPV4 = (bytes(12), bytes(10) + b"\xff\xff")
"""The first 96 bits of ::/96 and ::ffff:0:0/96, written with a dotted quad by dnspython
and glibc, and not by every C library (musl writes ::/96 in hex). The fast path trusts the
C library to write every other address as dnspython does: glibc does (tests)."""


def _canonical_packed(family: int, text: object) -> bytes | None:
    """The address's bytes if ``text`` is already in the one canonical text form, which the
    C library checks in a fraction of dnspython's time; None for anything else."""
    if not isinstance(text, str):
        return None
    try:
        packed = socket.inet_pton(family, text)
    except (OSError, ValueError):
        return None
    if family == socket.AF_INET6 and packed[:12] in _EMBEDDED_IPV4:
        return None
    return packed if socket.inet_ntop(family, packed) == text else None


class _ServedAddress(dns.rdata.Rdata):
    """An A or AAAA record with its address's bytes. Canonical text (what the API stores
    and the zone file parser writes) is taken as it is; any other goes through dnspython,
    which canonicalises it or raises its usual error."""

    __slots__ = ()
    FAMILY: ClassVar[int]
    address: str
    packed: bytes

    def __init__(
        self, rdclass: dns.rdataclass.RdataClass, rdtype: dns.rdatatype.RdataType, address: Any
    ) -> None:
        packed = _canonical_packed(self.FAMILY, address)
        if packed is None:
            super().__init__(rdclass, rdtype, address)  # type: ignore[call-arg]
            packed = socket.inet_pton(self.FAMILY, self.address)
        else:  # exactly what dnspython's constructors store, without their re-parse
            if not isinstance(rdclass, dns.rdataclass.RdataClass):
                rdclass = dns.rdataclass.RdataClass.make(rdclass)
            if not isinstance(rdtype, dns.rdatatype.RdataType):
                rdtype = dns.rdatatype.RdataType.make(rdtype)
            object.__setattr__(self, "rdclass", rdclass)
            object.__setattr__(self, "rdtype", rdtype)
            object.__setattr__(self, "rdcomment", None)
            object.__setattr__(self, "address", address)
        object.__setattr__(self, "packed", packed)

    def __hash__(self) -> int:
        return hash(self.packed)  # what dnspython hashes: the rendered rdata

    def _to_wire(
        self,
        file: Any,
        compress: dns.name.CompressType | None = None,
        origin: dns.name.Name | None = None,
        canonicalize: bool = False,
    ) -> None:
        file.write(self.packed)


class ServedA(_ServedAddress, dns.rdtypes.IN.A.A):
    __slots__ = ["packed"]
    FAMILY = socket.AF_INET


class ServedAAAA(_ServedAddress, dns.rdtypes.IN.AAAA.AAAA):
    __slots__ = ["packed"]
    FAMILY = socket.AF_INET6


_ADDRESSES: dict[dns.rdatatype.RdataType, type[_ServedAddress]] = {
    dns.rdatatype.A: ServedA,
    dns.rdatatype.AAAA: ServedAAAA,
}


def address_rdata(rdtype: dns.rdatatype.RdataType, text: str) -> dns.rdata.Rdata | None:
    """An A or AAAA record from bare address text, built without a tokenizer (which costs
    twice as much as the rest); None for another type or for text a tokenizer must read.
    Raises DNSException for an invalid address."""
    make = _ADDRESSES.get(rdtype)
    if make is None or not (text.isascii() and text.replace(".", "").replace(":", "").isalnum()):
        return None
    return make(dns.rdataclass.IN, rdtype, text)
