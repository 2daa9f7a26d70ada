"""The rules every write to a zone must keep, and the parsing of RRsets sent by clients.

Theory of operation: a write (one API request, a batch, an imported zone file) becomes a
set of whole RRsets, each replacing or deleting the RRset at one (owner, type). Rules that
a single record can break (owner outside the zone, a meta type, a TTL out of range, SOA
away from the apex, a second CNAME) are checked as each record joins its RRset, so a parser
can report them where they occur. Rules about a name or the apex (CNAME beside other data,
data below a DNAME, the apex SOA and NS) depend on the zone as it will be after the write:
`check_zone_change` reads the current zone with the changes laid over it, without copying
it, and looks only at the names the write touches plus the apex. Checking a whole imported
zone is the same check applied to an empty zone.

Every failure is a `ValidationError` carrying a stable code and the request field at fault,
so the HTTP API can answer 400 without parsing messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.tokenizer

from node.zones.index import Zone
from node.zones.served import address_rdata

MAX_TTL = 2**31 - 1
"""RFC 2181 §8: TTLs are unsigned 31-bit values."""

_MAX_STRING = 255
"""RFC 1035 §3.3: a <character-string> holds at most 255 octets."""

_ALLOWED_BESIDE_CNAME = frozenset({dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC})
"""RFC 1034 §3.6.2 forbids other data at a CNAME; RFC 4035 §2.5 excepts RRSIG and NSEC."""

ZoneChange = Mapping[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset | None]


class ValidationError(ValueError):
    """A write that would leave a zone invalid, or a request field that does not parse.

    ``owner`` and ``rdtype`` locate the offending data when there is one (a zone file
    parser maps them back to a line); ``rdtype`` is None when the rule is about a name.
    """

    def __init__(
        self,
        code: str,
        field: str,
        message: str,
        *,
        owner: dns.name.Name | None = None,
        rdtype: dns.rdatatype.RdataType | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.owner = owner
        self.rdtype = rdtype


class RecordTokenizer(dns.tokenizer.Tokenizer):
    """dnspython's tokenizer, except that character-strings over 255 octets are split.

    People write long SPF and DKIM texts as one quoted string; dnspython and BIND refuse
    them. The string is split into consecutive 255-octet strings, counted after escapes
    are decoded (so a multi-octet UTF-8 character may straddle two strings): the only
    split that keeps every octet in order, and the one a resolver sees as the same text.
    Only `get_remaining` splits: dnspython's TXT-like types (TXT, SPF, ...) read their
    strings through it, types that allow long strings (CAA's value) read token by token,
    and the other callers accept no token that long anyway.
    """

    def get_remaining(self, max_tokens: int | None = None) -> list[dns.tokenizer.Token]:
        tokens = super().get_remaining(max_tokens)
        if max_tokens is not None:
            return tokens
        return [piece for token in tokens for piece in _split_character_string(token)]


def _split_character_string(token: dns.tokenizer.Token) -> list[dns.tokenizer.Token]:
    octets: bytes = token.unescape_to_bytes().value
    if len(octets) <= _MAX_STRING:
        return [token]
    return [
        dns.tokenizer.Token(
            dns.tokenizer.QUOTED_STRING,
            "".join(f"\\{octet:03d}" for octet in octets[start : start + _MAX_STRING]),
            has_escape=True,
        )
        for start in range(0, len(octets), _MAX_STRING)
    ]


def parse_owner(zone_origin: dns.name.Name, name: str) -> dns.name.Name:
    """An owner name from a client: "@" is the apex, names not ending in "." are relative."""
    if not name:
        raise ValidationError("invalid_name", "name", "the owner name is empty")
    try:
        owner = dns.name.from_text(name, zone_origin)
    except dns.exception.DNSException as e:
        raise ValidationError("invalid_name", "name", f"{name!r} is not a domain name: {e}") from e
    _check_owner(zone_origin, owner)
    return owner.canonicalize()


def parse_rdtype(text: str) -> dns.rdatatype.RdataType:
    """A record type by mnemonic or RFC 3597 TYPEnnn; types that cannot be stored are refused."""
    try:
        rdtype = dns.rdatatype.from_text(text)
    except (dns.exception.DNSException, ValueError) as e:
        raise ValidationError("invalid_type", "type", f"unknown record type {text!r}") from e
    _check_storable_type(rdtype)
    return rdtype


def parse_rrset(
    zone_origin: dns.name.Name, name: str, rdtype: str, ttl: int, records: list[str]
) -> dns.rrset.RRset:
    """One RRset from a client; each record is one whole rdata in presentation format.

    Names inside the rdata are relative to the zone origin unless they end in ".".
    Duplicate records collapse into one, as in a zone file.
    """
    owner = parse_owner(zone_origin, name)
    record_type = parse_rdtype(rdtype)
    _check_ttl(ttl, owner, record_type)
    if not records:
        raise ValidationError("empty_rrset", "records", "an RRset needs at least one record")
    rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, record_type)
    for index, text in enumerate(records):
        field = f"records[{index}]"
        add_record(
            zone_origin, rrset, _parse_rdata(zone_origin, record_type, text, field), ttl, field
        )
    return rrset


def _parse_rdata(
    origin: dns.name.Name, rdtype: dns.rdatatype.RdataType, text: str, field: str
) -> dns.rdata.Rdata:
    with contextlib.suppress(dns.exception.DNSException):  # the slow path explains errors
        if (address := address_rdata(rdtype, text)) is not None:
            return address
    tokenizer = RecordTokenizer(text)
    type_text = dns.rdatatype.to_text(rdtype)
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, tokenizer, origin, relativize=False)
        one_line = tokenizer.get().is_eof()
    except dns.exception.DNSException as e:
        raise ValidationError(
            "invalid_rdata", field, f"{text!r} is not valid {type_text} data: {e}"
        ) from e
    if not one_line:
        raise ValidationError(
            "invalid_rdata", field, f"{text!r} holds more than one {type_text} record"
        )
    return rdata


def add_record(
    zone_origin: dns.name.Name,
    rrset: dns.rrset.RRset,
    rdata: dns.rdata.Rdata,
    ttl: int,
    field: str,
) -> None:
    """Add one record to an RRset being built, enforcing the rules one record can break.

    The owner and type are checked when the first record joins. dnspython silently keeps
    only the last record of a singleton type (CNAME, DNAME, SOA, NSEC), which would hide a
    conflicting second record; here it is an error. Differing TTLs within an RRset resolve
    to the lowest, as RFC 2181 §5.2 prescribes.
    """
    if len(rrset) == 0:
        _check_placement(zone_origin, rrset.name, rrset.rdtype)
    _check_ttl(ttl, rrset.name, rrset.rdtype)
    if dns.rdatatype.is_singleton(rrset.rdtype) and len(rrset) > 0 and rdata not in rrset:
        type_text = dns.rdatatype.to_text(rrset.rdtype)
        raise ValidationError(
            "singleton_conflict",
            field,
            f"{rrset.name} can hold only one {type_text} record",
            owner=rrset.name,
            rdtype=rrset.rdtype,
        )
    try:
        rrset.add(rdata, ttl)
    except dns.rdataset.DifferingCovers as e:
        covered = dns.rdatatype.to_text(rrset.covers)
        raise ValidationError(
            "invalid_rdata",
            field,
            f"{rrset.name} holds RRSIGs covering {covered}; one name can hold RRSIGs"
            " for one type only",
            owner=rrset.name,
            rdtype=rrset.rdtype,
        ) from e


def check_zone_change(zone: Zone, changes: ZoneChange) -> None:
    """Raise ValidationError if applying ``changes`` (None deletes the RRset) to ``zone``
    would leave it invalid.

    Only the names the change touches, and the apex, are examined, so a one-RRset write
    costs the same in any zone (adding a DNAME also looks for data below it).
    """
    _check_zone(
        zone,
        ((owner, rdtype, rrset, _name_key(owner)) for (owner, rdtype), rrset in changes.items()),
    )


def check_zone_rrsets(origin: dns.name.Name, rrsets: Iterable[dns.rrset.RRset]) -> None:
    """The rules of `check_zone_change`, applied to a whole zone (after an import)."""
    seen: set[tuple[_NameKey, dns.rdatatype.RdataType]] = set()
    changes: list[_Change] = []
    for rrset in rrsets:
        name_key = _name_key(rrset.name)
        if (name_key, rrset.rdtype) in seen:
            raise ValidationError(
                "duplicate_rrset",
                "type",
                f"{rrset.name} has more than one {dns.rdatatype.to_text(rrset.rdtype)} RRset",
                owner=rrset.name,
                rdtype=rrset.rdtype,
            )
        seen.add((name_key, rrset.rdtype))
        changes.append((rrset.name, rrset.rdtype, rrset, name_key))
    _check_zone(Zone(origin), changes)


_NameKey = tuple[bytes, ...]
_Change = tuple[dns.name.Name, dns.rdatatype.RdataType, dns.rrset.RRset | None, _NameKey]


def _name_key(name: dns.name.Name) -> _NameKey:
    """A dict key equal for names that compare equal (ASCII case-insensitively).

    dnspython computes a Name's hash in Python on every lookup, which dominates checking a
    large import; lower-cased labels hash in C once.
    """
    return tuple(map(bytes.lower, name.labels))


def _check_zone(zone: Zone, changes: Iterable[_Change]) -> None:
    after = _ZoneAfterChange(zone)
    for owner, rdtype, rrset, name_key in changes:
        if rrset is not None and len(rrset) > 0:
            _check_placement(zone.origin, owner, rdtype)
            _check_ttl(rrset.ttl, owner, rdtype)
            after.record(owner, rdtype, True, name_key)
        else:  # a delete
            _check_owner(zone.origin, owner)
            after.record(owner, rdtype, False, name_key)
    for owner, types in after.changed_names():
        _check_name(after, owner, types)
    _check_apex(after)


class _ZoneAfterChange:
    """The zone as it will be once the changes apply, read through without copying."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self._changed: dict[
            _NameKey, tuple[dns.name.Name, dict[dns.rdatatype.RdataType, bool]]
        ] = {}
        self._zone_empty = not zone.exists(zone.origin)
        # Walking up from every touched name to look for a DNAME is only needed when one
        # can exist: in an empty zone (an import) that is when the change brings one.
        self.may_hold_dname = not self._zone_empty

    def record(
        self,
        owner: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        present: bool,
        name_key: _NameKey,
    ) -> None:
        entry = self._changed.get(name_key)
        if entry is None:
            entry = self._changed[name_key] = (owner, {})
        entry[1][rdtype] = present
        self.may_hold_dname = self.may_hold_dname or (present and rdtype == dns.rdatatype.DNAME)

    def changed_names(self) -> Iterator[tuple[dns.name.Name, set[dns.rdatatype.RdataType]]]:
        """Each name the change touches, with the types it will hold."""
        for owner, changed in self._changed.values():
            yield owner, self._types(owner, changed)

    def types_at(self, owner: dns.name.Name) -> set[dns.rdatatype.RdataType]:
        entry = self._changed.get(_name_key(owner))
        return self._types(owner, {} if entry is None else entry[1])

    def _types(
        self, owner: dns.name.Name, changed: Mapping[dns.rdatatype.RdataType, bool]
    ) -> set[dns.rdatatype.RdataType]:
        node = None if self._zone_empty else self.zone.node(owner)
        types = set(node) if node else set()
        for rdtype, present in changed.items():
            if present:
                types.add(rdtype)
            else:
                types.discard(rdtype)
        return types

    def unchanged_data_below(self, owner: dns.name.Name) -> bool:
        """Whether names strictly below ``owner`` that the change leaves alone hold data.

        Changed names below it are checked on their own, by walking up from them.
        """
        if not self.zone.exists(owner):
            return False
        return any(
            name != owner and name.is_subdomain(owner) and _name_key(name) not in self._changed
            for name in self.zone.names()
        )


def _check_name(
    after: _ZoneAfterChange, owner: dns.name.Name, types: set[dns.rdatatype.RdataType]
) -> None:
    if not types:
        return
    if dns.rdatatype.CNAME in types and not types <= _ALLOWED_BESIDE_CNAME:
        others = " ".join(dns.rdatatype.to_text(t) for t in sorted(types - _ALLOWED_BESIDE_CNAME))
        raise ValidationError(
            "cname_conflict",
            "type",
            f"{owner} has a CNAME and other data ({others})",
            owner=owner,
            rdtype=dns.rdatatype.CNAME,
        )
    if dns.rdatatype.DNAME in types and after.unchanged_data_below(owner):
        raise ValidationError(
            "dname_conflict",
            "type",
            f"{owner} has names below it, so it cannot hold a DNAME (RFC 6672 §2.4)",
            owner=owner,
            rdtype=dns.rdatatype.DNAME,
        )
    if after.may_hold_dname:
        for ancestor in _ancestors(owner, after.zone.origin):
            if dns.rdatatype.DNAME in after.types_at(ancestor):
                raise ValidationError(
                    "dname_conflict",
                    "name",
                    f"{owner} is below the DNAME at {ancestor}, where no data may exist"
                    " (RFC 6672 §2.4)",
                    owner=owner,
                )


def _check_apex(after: _ZoneAfterChange) -> None:
    origin = after.zone.origin
    types = after.types_at(origin)
    for rdtype, code in ((dns.rdatatype.SOA, "missing_soa"), (dns.rdatatype.NS, "missing_ns")):
        if rdtype not in types:
            raise ValidationError(
                code,
                "type",
                f"the zone apex {origin} needs an {dns.rdatatype.to_text(rdtype)} RRset",
                owner=origin,
                rdtype=rdtype,
            )


def _ancestors(owner: dns.name.Name, origin: dns.name.Name) -> Iterator[dns.name.Name]:
    """The names strictly above ``owner``, up to and including ``origin``."""
    name = owner
    while name != origin:
        name = name.parent()
        yield name


def _check_placement(
    origin: dns.name.Name, owner: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> None:
    """The rules an RRset's owner and type must keep, whatever its records."""
    _check_owner(origin, owner)
    _check_storable_type(rdtype, owner)
    if rdtype == dns.rdatatype.SOA and owner != origin:
        raise ValidationError(
            "soa_not_at_apex",
            "type",
            f"an SOA record belongs only at the zone apex {origin}, not at {owner}",
            owner=owner,
            rdtype=rdtype,
        )


def _check_owner(origin: dns.name.Name, owner: dns.name.Name) -> None:
    if not owner.is_subdomain(origin):
        raise ValidationError(
            "out_of_zone", "name", f"{owner} is outside the zone {origin}", owner=owner
        )


def _check_storable_type(
    rdtype: dns.rdatatype.RdataType, owner: dns.name.Name | None = None
) -> None:
    if rdtype == dns.rdatatype.NONE or dns.rdatatype.is_metatype(rdtype):
        raise ValidationError(
            "invalid_type",
            "type",
            f"{dns.rdatatype.to_text(rdtype)} is not a type of data a zone can hold",
            owner=owner,
            rdtype=rdtype,
        )


def _check_ttl(
    ttl: int,
    owner: dns.name.Name | None = None,
    rdtype: dns.rdatatype.RdataType | None = None,
) -> None:
    # JSON gives booleans and floats too; only a plain integer is a TTL.
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise ValidationError(
            "invalid_ttl",
            "ttl",
            f"TTL {ttl!r} is not an integer in 0..{MAX_TTL}",
            owner=owner,
            rdtype=rdtype,
        )
