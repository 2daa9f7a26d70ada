"""State keys: the names of replicated registers.

A key is a space-separated string. Names inside keys are absolute, lower-cased
presentation text; dnspython escapes spaces in names as ``\\032``, so the separator can
never appear inside a field. Record keys carry the zone generation (the number of times the
zone was deleted or replaced) so a deleted zone's records can never come back when the zone
is created again.

Kinds:

- ``zone ZONE`` — {"gen": int, "live": bool, "ttl": int}
- ``rr ZONE GEN OWNER TYPE DIGEST`` — {"rdata": str} or null: one record of a multi-record
  RRset; DIGEST is SHA-256 of the rdata's canonical wire form (RFC 4034 §6.2), 128 bits.
- ``ttl ZONE GEN OWNER TYPE`` — {"ttl": int} or null: the TTL of that RRset.
- ``rrset ZONE GEN OWNER TYPE`` — {"ttl": int, "rdata": [str]} or null: singleton types
  (SOA, CNAME, DNAME), one register per RRset.
- ``serial ZONE GEN ORIGIN`` — {"base": int, "count": int}: written only by ORIGIN.
- ``member NODE`` — {"name": str, "peer": str, "status": "active" | "left" | "removed"}
- ``setting NAME`` — {"value": ...}: cluster-wide settings such as ``cluster.name``.
- ``token ID`` — {"name": str, "role": str, "zones": [str] | null, "hash": str} or
  {"revoked": true}: API tokens, stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype

SINGLETON_TYPES = frozenset({dns.rdatatype.SOA, dns.rdatatype.CNAME, dns.rdatatype.DNAME})


class StateKeyError(ValueError):
    """A state key that does not parse."""


def name_text(name: dns.name.Name) -> str:
    return name.canonicalize().to_text()


def rdata_digest(rdata: dns.rdata.Rdata) -> str:
    return hashlib.sha256(rdata.to_digestable()).hexdigest()[:32]


def type_text(rdtype: dns.rdatatype.RdataType) -> str:
    return dns.rdatatype.to_text(rdtype)


@dataclass(frozen=True)
class StateKey:
    kind: str
    zone: str  # the object id for member, token and setting keys
    gen: int = 0
    owner: str = ""
    rdtype: str = ""
    extra: str = ""

    def text(self) -> str:
        if self.kind in ("zone", "member", "token", "setting"):
            return f"{self.kind} {self.zone}"
        if self.kind in ("ttl", "rrset"):
            return f"{self.kind} {self.zone} {self.gen} {self.owner} {self.rdtype}"
        if self.kind == "rr":
            return f"rr {self.zone} {self.gen} {self.owner} {self.rdtype} {self.extra}"
        return f"serial {self.zone} {self.gen} {self.extra}"

    @property
    def rrset_id(self) -> tuple[str, str, str]:
        return (self.zone, self.owner, self.rdtype)


_FIELD_COUNT = {
    "zone": 2,
    "member": 2,
    "token": 2,
    "setting": 2,
    "rr": 6,
    "ttl": 5,
    "rrset": 5,
    "serial": 4,
}


def parse_key(text: str) -> StateKey:
    parts = text.split(" ")
    kind = parts[0]
    if _FIELD_COUNT.get(kind) != len(parts):
        raise StateKeyError(f"bad state key {text!r}")
    if kind in ("zone", "member", "token", "setting"):
        return StateKey(kind, parts[1])
    try:
        gen = int(parts[2])
    except ValueError:
        raise StateKeyError(f"bad generation in state key {text!r}") from None
    if kind == "serial":
        return StateKey("serial", parts[1], gen, extra=parts[3])
    extra = parts[5] if kind == "rr" else ""
    return StateKey(kind, parts[1], gen, parts[3], parts[4], extra)


def zone_key(zone: str) -> str:
    return f"zone {zone}"


def serial_key(zone: str, gen: int, origin: str) -> str:
    return f"serial {zone} {gen} {origin}"


def ttl_key(zone: str, gen: int, owner: str, rdtype: str) -> str:
    return f"ttl {zone} {gen} {owner} {rdtype}"


def rrset_key(zone: str, gen: int, owner: str, rdtype: str) -> str:
    return f"rrset {zone} {gen} {owner} {rdtype}"


def rr_key(zone: str, gen: int, owner: str, rdtype: str, digest: str) -> str:
    return f"rr {zone} {gen} {owner} {rdtype} {digest}"


def member_key(node_id: str) -> str:
    return f"member {node_id}"


def token_key(token_id: str) -> str:
    return f"token {token_id}"


def setting_key(name: str) -> str:
    return f"setting {name}"
