"""Reading a query's header and question by hand, and fitting a stored response to it.

Theory of operation: dnspython needs 150-200 µs to parse, answer and render one query, so a
response is rendered once and its bytes are reused. Two queries that ask the same thing
get responses that differ only in bytes that can be copied from the query, so no
dnspython code runs when a stored response is reused.

``read_query`` recognises only the common query shape, and returns None for anything else,
which then goes to the full path in ``query.py`` (the reference behaviour):

- header: QR, opcode, AA and TC clear (RD, and all of the fourth byte, may be anything);
  one question and no answer or authority records; no additional record but an OPT;
- question: an uncompressed name of at most 255 octets, then type and class;
- an OPT, if present: owner root, extended rcode 0, version 0, and only options that the
  full path ignores and dnspython parses without fault (a well-formed COOKIE, or a code
  dnspython has no parser for). NSID changes the response, ECS and the rest could be
  malformed: those go to the full path;
- nothing after that.

Its key is what the response depends on: the name bytes lower-cased, the type and class,
and a variant made of the transport, whether EDNS is used, the DO bit and the size limit
that truncation is decided against.

``StoredResponse.for_query`` then differs from a fresh rendering only in what it copies:

- the ID (bytes 0-1) and RD and CD (RFC 1035 §4.1.1, RFC 4035 §3.1.6) from the query;
- the question bytes: the same length, perhaps another ASCII case (0x20). dnspython
  compresses names case-insensitively, so names in the answer that match the query name,
  or a suffix of it, are pointers into the question and take the client's spelling, the
  same bytes a fresh rendering would give. A DNAME-synthesized CNAME carries the client's
  spelling in its rdata too; such responses keep the exact question they were rendered
  for (``question``) and are not reused for other spellings;
- the SOA serial, which changes with every write to a zone, of the zone's current
  ``Serial``, at an offset found by rendering with ``SERIAL_SENTINEL``.
"""

from __future__ import annotations

import functools
import struct

import dns.edns

__all__ = [
    "HEADER_SIZE",
    "SERIAL_SENTINEL",
    "QuestionKey",
    "Serial",
    "StoredResponse",
    "find_serial",
    "has_plain_name",
    "is_tcp",
    "read_query",
]

QuestionKey = tuple[bytes, int]
"""The lower-cased name bytes, and an integer of the type, class and variant."""

SERIAL_SENTINEL = 0x5E71A1ED
"""A serial a response is rendered with to find where the SOA serial lands in its bytes."""

HEADER_SIZE = 12
_MAX_NAME = 255
_QUESTION_FIXED = 5  # the root label, then type and class
_OPT_FIXED = 11
_SMALLEST = HEADER_SIZE + _QUESTION_FIXED
_MIN_UDP = 512
_TCP = 0  # the limit part of a variant, for TCP
_VARIANT_BITS = 18  # limit (16 bits), EDNS, DO
_VARIANT_MASK = (1 << _VARIANT_BITS) - 1
_TYPE_CLASS = struct.Struct("!HH")
_NO_OPT_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
_OPT_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x01"
_TYPE_CLASS_OPT = struct.Struct("!HHBHHBBHH")
"""Question type and class, then OPT owner (root), type, payload, rcode, version, flags,
rdlength."""
_OPT_TYPE = 41
_CD = 0x10  # in the fourth header byte
_COOKIE = int(dns.edns.OptionType.COOKIE)
_COOKIE_SIZES = frozenset({8, *range(16, 41)})  # client cookie, then none or 8-32 octets
_PARSED_OPTIONS = frozenset(
    int(code)
    for code in dns.edns.OptionType
    if dns.edns.get_option_class(code) is not dns.edns.GenericOption
)
"""Options dnspython parses (and can reject); any other code is kept as opaque bytes."""


def read_query(wire: bytes, tcp: bool, udp_payload: int) -> tuple[QuestionKey, int] | None:
    """The key of a plain query and where its question ends; None for the full path.

    Without EDNS options the question ends where the message (or its 11-byte OPT) ends, so
    the name's labels are not walked here. A key found among stored responses was checked
    when it was stored (``has_plain_name``), and bytes equal but for ASCII case have the
    same label lengths, which are all below 64. Check before storing a new key.
    """
    size = len(wire)
    if size < _SMALLEST or wire[2] & 0xFE:
        return None
    counts = wire[4:12]
    if counts == _NO_OPT_COUNTS:
        qtype, qclass = _TYPE_CLASS.unpack_from(wire, size - 4)
        variant = _TCP if tcp else _MIN_UDP << 2
        return _key(wire, size, qtype, qclass, variant), size
    if counts != _OPT_COUNTS or size < _SMALLEST + _OPT_FIXED:
        return None
    end = size - _OPT_FIXED
    qtype, qclass, owner, rdtype, payload, rcode, version, flags, length = (
        _TYPE_CLASS_OPT.unpack_from(wire, end - 4)
    )
    if owner or rdtype != _OPT_TYPE or length:  # not an OPT without options at the end
        found = _name_end(wire)
        if found is None:
            return None
        end = found + _QUESTION_FIXED
        if size < end + _OPT_FIXED:
            return None
        qtype, qclass, owner, rdtype, payload, rcode, version, flags, length = (
            _TYPE_CLASS_OPT.unpack_from(wire, end - 4)
        )
        options = end + _OPT_FIXED
        if owner or rdtype != _OPT_TYPE or options + length != size:
            return None
        if not _ignored_options(wire, options):
            return None
    if rcode or version:
        return None
    if tcp:
        limit = _TCP
    else:
        limit = udp_payload if payload > udp_payload else payload
        if limit < _MIN_UDP:
            limit = _MIN_UDP
    return _key(wire, end, qtype, qclass, limit << 2 | 2 | flags >> 15), end


def _key(wire: bytes, end: int, qtype: int, qclass: int, variant: int) -> QuestionKey:
    # Only the name is lower-cased: type and class bytes may look like ASCII letters.
    return wire[HEADER_SIZE : end - 4].lower(), (qtype << 16 | qclass) << _VARIANT_BITS | variant


def has_plain_name(wire: bytes, question_end: int) -> bool:
    """Whether the question up to ``question_end`` is an uncompressed name of at most 255
    octets, then type and class."""
    found = _name_end(wire)
    return found is not None and found + _QUESTION_FIXED == question_end


def is_tcp(key: QuestionKey) -> bool:
    return (key[1] & _VARIANT_MASK) >> 2 == _TCP


def _name_end(wire: bytes) -> int | None:
    """Where the question name's root label is, walking its labels; None if not plain."""
    end = HEADER_SIZE
    try:
        length = wire[end]
        while length:
            if length > 63:  # a compression pointer or an extended label type
                return None
            end += length + 1
            length = wire[end]
    except IndexError:
        return None
    return None if end - HEADER_SIZE >= _MAX_NAME else end


def _ignored_options(wire: bytes, start: int) -> bool:
    """Whether the options from ``start`` to the end are well formed and change nothing."""
    size = len(wire)
    at = start
    while at < size:
        if at + 4 > size:
            return False
        code = int.from_bytes(wire[at : at + 2])
        length = int.from_bytes(wire[at + 2 : at + 4])
        at += 4 + length
        if at > size:
            return False
        if code == _COOKIE:
            if length not in _COOKIE_SIZES:
                return False
        elif code in _PARSED_OPTIONS:
            return False
    return True


class Serial:
    """The current SOA serial of one zone, shared by the stored responses that carry it."""

    __slots__ = ("wire",)

    def __init__(self, serial: int) -> None:
        self.wire = serial.to_bytes(4)


class StoredResponse:
    """A rendered response (ID 0, RD and CD clear) and what to copy into it per query."""

    __slots__ = (
        "_heads",
        "_serial",
        "_tail",
        "_tail_end",
        "hits",
        "qtype",
        "question",
        "rcode",
        "seen",
    )

    def __init__(
        self,
        rendered: bytes,
        question_end: int,
        qtype: int,
        rcode: int,
        *,
        serial_at: int | None = None,
        serial: Serial | None = None,
        exact_question: bool = False,
    ) -> None:
        self._heads = _heads(rendered[2:HEADER_SIZE])
        self.qtype = qtype
        self.rcode = rcode
        self.hits = 0
        """Times sent; the cache adds these to the query counters when it drops the response."""
        self.seen = 0
        """``hits`` when the cache last considered evicting this response."""
        self.question = rendered[HEADER_SIZE:question_end] if exact_question else None
        """The spelling this response is only valid for, or None for any spelling."""
        if serial_at is None or serial is None:
            self._tail = rendered[question_end:]
            self._tail_end = b""
            self._serial: Serial | None = None
        else:
            self._tail = rendered[question_end:serial_at]
            self._tail_end = rendered[serial_at + 4 :]
            self._serial = serial

    def fits(self, wire: bytes, question_end: int) -> bool:
        """Whether this response suits ``wire``, a query with the key it was stored under."""
        return self.question is None or self.question == wire[HEADER_SIZE:question_end]

    def for_query(self, wire: bytes, question_end: int) -> bytes:
        """The response to ``wire``, a query this response ``fits``."""
        head = self._heads[wire[2] & 1 | (wire[3] & _CD) >> 3]
        if self._serial is None:
            return b"".join((wire[:2], head, wire[HEADER_SIZE:question_end], self._tail))
        return b"".join(
            (
                wire[:2],
                head,
                wire[HEADER_SIZE:question_end],
                self._tail,
                self._serial.wire,
                self._tail_end,
            )
        )


@functools.lru_cache(maxsize=4096)
def _heads(head: bytes) -> tuple[bytes, ...]:
    """Header bytes 2-11 for each RD and CD a query may have; responses share them (there
    are few distinct ones), which keeps each stored response small."""
    return tuple(
        bytes((head[0] | variant & 1, head[1] | (_CD if variant & 2 else 0))) + head[2:]
        for variant in range(4)
    )


def find_serial(rendered: bytes, question_end: int) -> int | None:
    """Where ``SERIAL_SENTINEL`` is in the records of ``rendered``; None unless exactly once."""
    sentinel = SERIAL_SENTINEL.to_bytes(4)
    at = rendered.find(sentinel, question_end)
    if at < 0 or rendered.find(sentinel, at + 1) >= 0:
        return None
    return at
