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
- ``cut NODE REPORTER`` — {"seq": int}: how many of NODE's events REPORTER had applied when
  it applied the end of NODE's membership; written only by REPORTER (see
  ``protocol.membership``).
- ``setting NAME`` — {"value": ...}: cluster-wide settings such as ``cluster.name``.
- ``invite JTI`` — {"issuer": node, "expires": int, "status": "open" | "used" |
  "revoked", "used_by": node or null}: used and revoked are terminal, used outranks revoked.
- ``token ID`` — {"name": str, "role": str, "zones": [str] | null, "hash": str} or
  {"revoked": true}: API tokens, stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype

from protocol.canonical import is_int
from protocol.tokens import ROLES

SINGLETON_TYPES = frozenset({dns.rdatatype.SOA, dns.rdatatype.CNAME, dns.rdatatype.DNAME})
_SINGLETON_TEXTS = frozenset(dns.rdatatype.to_text(t) for t in SINGLETON_TYPES)


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
        if self.kind in ("zone", "member", "token", "setting", "invite"):
            return f"{self.kind} {self.zone}"
        if self.kind in ("ttl", "rrset"):
            return f"{self.kind} {self.zone} {self.gen} {self.owner} {self.rdtype}"
        if self.kind == "rr":
            return f"rr {self.zone} {self.gen} {self.owner} {self.rdtype} {self.extra}"
        if self.kind == "cut":
            return f"cut {self.zone} {self.extra}"
        return f"serial {self.zone} {self.gen} {self.extra}"

    @property
    def rrset_id(self) -> tuple[str, str, str]:
        return (self.zone, self.owner, self.rdtype)


_FIELD_COUNT = {
    "zone": 2,
    "member": 2,
    "token": 2,
    "setting": 2,
    "invite": 2,
    "rr": 6,
    "ttl": 5,
    "rrset": 5,
    "serial": 4,
    "cut": 3,
}


def parse_key(text: str) -> StateKey:
    parts = text.split(" ")
    kind = parts[0]
    if _FIELD_COUNT.get(kind) != len(parts):
        raise StateKeyError(f"bad state key {text!r}")
    if kind in ("zone", "member", "token", "setting", "invite"):
        return StateKey(kind, parts[1])
    if kind == "cut":
        return StateKey("cut", parts[1], extra=parts[2])
    if not _GEN.fullmatch(parts[2]):
        raise StateKeyError(f"bad generation in state key {text!r}")
    gen = int(parts[2])
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


_NAME = re.compile(r"(?:[^ .]+\.)+|\.")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_GEN = re.compile(r"0|[1-9][0-9]{0,17}")
_DIGEST = re.compile(r"[0-9a-f]{32}")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")


def _shape(value: object, fields: dict[str, Check]) -> bool:
    return (
        isinstance(value, dict)
        and value.keys() == fields.keys()
        and all(check(value[name]) for name, check in fields.items())
    )


_TTL = partial(is_int, low=0, high=2**31 - 1)
_COUNT = partial(is_int, low=0, high=2**63 - 1)
_SERIAL = partial(is_int, low=0, high=2**32 - 1)


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _texts(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_text(v) for v in value)


Check = Callable[[object], bool]
_ZONE: dict[str, Check] = {"gen": _COUNT, "live": lambda v: isinstance(v, bool), "ttl": _TTL}
_VALUE_SHAPES: dict[str, list[dict[str, Check]]] = {
    "zone": [_ZONE, {**_ZONE, "serial": _SERIAL}],
    "rr": [{"rdata": _text}],
    "ttl": [{"ttl": _TTL}],
    "rrset": [{"ttl": _TTL, "rdata": _texts}],
    "serial": [{"base": _SERIAL, "count": _COUNT}],
    "member": [
        {
            "name": lambda v: isinstance(v, str),
            "peer": lambda v: isinstance(v, str),
            "status": lambda v: v in ("active", "left", "removed"),
        }
    ],
    "setting": [{"value": lambda v: True}],
    "cut": [{"seq": _COUNT}],
    "invite": [
        {
            "issuer": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
            "expires": _COUNT,
            "status": lambda v: v in ("open", "revoked"),
            "used_by": lambda v: v is None,
        },
        {
            "issuer": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
            "expires": _COUNT,
            "status": lambda v: v == "used",
            "used_by": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
        },
    ],
    "token": [
        {
            "name": lambda v: isinstance(v, str),
            "role": lambda v: v in ROLES,
            "zones": lambda v: v is None or (isinstance(v, list) and all(_text(z) for z in v)),
            "hash": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
        },
        {"revoked": lambda v: v is True},
    ],
}
_NULLABLE = frozenset({"rr", "ttl", "rrset"})


@lru_cache(maxsize=4096)
def _is_name(text: str) -> bool:
    """Absolute canonical presentation text of a valid name (labels ≤ 63, name ≤ 255).

    The quick test is exact for names without escapes; anything else gets a full parse.
    Cached: every record key repeats its zone, and a record's keys repeat its owner.
    """
    if not _NAME.fullmatch(text):
        return False
    quick = "\\" not in text and text == text.lower() and len(text) <= 254
    if quick and all(len(x) <= 63 for x in text.split(".")):
        return True
    try:
        return name_text(dns.name.from_text(text)) == text
    except dns.exception.DNSException:
        return False


@lru_cache(maxsize=1024)
def _is_type(text: str) -> bool:
    """A type's mnemonic (or TYPEnnn) exactly as dnspython writes it."""
    try:
        return type_text(dns.rdatatype.from_text(text)) == text
    except dns.exception.DNSException:
        return False


_ZONE_NAMED = frozenset({"zone", "rr", "ttl", "rrset", "serial"})
_OWNED = frozenset({"cut", "serial"})  # keys whose ``extra`` is the writing node's id
_ID_FORMS: dict[str, tuple[tuple[str, re.Pattern[str], str], ...]] = {
    "member": (("zone", _HEX64, "node id"),),
    "serial": (("extra", _HEX64, "node id"),),
    "cut": (("zone", _HEX64, "node id"), ("extra", _HEX64, "node id")),
    "token": (("zone", _TOKEN_ID, "token id"),),
    "invite": (("zone", _DIGEST, "invite id"),),
    "rr": (("extra", _DIGEST, "digest"),),
}
"""Per kind, the key fields that are ids: the field, its form, and what it is called."""


def check_write(key: str, value: object, origin: str) -> None:
    """Refuse a write whose key or value is not of a known shape, or that ``origin`` may
    not make, before it is applied.

    Rdata text is not parsed here (that would double the cost of a large import); the zone
    code that reads it treats rdata it cannot parse as absent.
    """
    parsed = parse_key(key)
    kind = parsed.kind
    if kind in _OWNED and parsed.extra != origin:
        raise StateKeyError(f"{key!r} belongs to another node than {origin[:12]}")
    if (kind in _ZONE_NAMED and not _is_name(parsed.zone)) or (
        parsed.owner and not _is_name(parsed.owner)
    ):
        raise StateKeyError(f"bad name in state key {key!r}")
    if parsed.rdtype:
        if not _is_type(parsed.rdtype):
            raise StateKeyError(f"bad type in state key {key!r}")
        if (kind == "rrset") != (parsed.rdtype in _SINGLETON_TEXTS):
            raise StateKeyError(f"{key!r}: rrset keys are for SOA, CNAME and DNAME, rr and ttl not")
    for field_name, form, called in _ID_FORMS.get(kind, ()):
        if not form.fullmatch(getattr(parsed, field_name)):
            raise StateKeyError(f"bad {called} in state key {key!r}")
    if value is None and kind in _NULLABLE:
        return
    if not any(_shape(value, shape) for shape in _VALUE_SHAPES[kind]):
        raise StateKeyError(f"value of {key!r} does not have the shape of a {kind}")


def invite_key(jti: str) -> str:
    return f"invite {jti}"
