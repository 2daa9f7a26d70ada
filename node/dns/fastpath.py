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

Its key is what the response depends on: the question bytes lower-cased (name, type and
class), and a variant made of the transport, whether EDNS is used, the DO bit and the size
limit that truncation is decided against.

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

import dns.edns

__all__ = [
    "HEADER_SIZE",
    "SERIAL_SENTINEL",
    "QuestionKey",
    "Serial",
    "StoredResponse",
    "find_serial",
    "read_query",
]

QuestionKey = tuple[bytes, int]
"""The lower-cased question bytes, and the variant from ``read_query``."""

SERIAL_SENTINEL = 0x5E71A1ED
"""A serial a response is rendered with to find where the SOA serial lands in its bytes."""

HEADER_SIZE = 12
_MAX_NAME = 255
_QUESTION_FIXED = 5  # the root label, then type and class
_OPT_FIXED = 11  # root owner, type, class (payload), TTL (rcode, version, flags), rdlength
_MIN_UDP = 512
_TCP_VARIANT = 0
_NO_OPT_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
_OPT_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x01"
_OPT_START = b"\x00\x00\x29"  # root owner, type OPT
_CD = 0x10  # in the fourth header byte
_COOKIE = int(dns.edns.OptionType.COOKIE)
_COOKIE_SIZES = frozenset({8, *range(16, 41)})  # client cookie, then none or 8-32 octets
_PARSED_OPTIONS = frozenset(
    int(code)
    for code in dns.edns.OptionType
    if dns.edns.get_option_class(code) is not dns.edns.GenericOption
)
"""Options dnspython parses (and can reject); any other code is kept as opaque bytes."""


def read_query(wire: bytes, *, tcp: bool, udp_payload: int) -> tuple[QuestionKey, int] | None:
    """The key of a plain query and where its question ends; None for the full path."""
    if len(wire) < HEADER_SIZE or wire[2] & 0xFE:
        return None
    counts = wire[4:12]
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
    if end - HEADER_SIZE >= _MAX_NAME:
        return None
    end += _QUESTION_FIXED
    size = len(wire)
    if counts == _NO_OPT_COUNTS:
        if size != end:
            return None
        variant = _TCP_VARIANT if tcp else _MIN_UDP << 2
    elif counts == _OPT_COUNTS:
        opt = end
        if wire[opt : opt + 3] != _OPT_START or wire[opt + 5 : opt + 7] != b"\x00\x00":
            return None
        options = opt + _OPT_FIXED
        if size < options or size != options + int.from_bytes(wire[opt + 9 : options]):
            return None
        if options < size and not _ignored_options(wire, options):
            return None
        payload = int.from_bytes(wire[opt + 3 : opt + 5])
        limit = 0 if tcp else max(_MIN_UDP, min(payload, udp_payload))
        variant = limit << 2 | 2 | wire[opt + 7] >> 7
    else:
        return None
    return (wire[HEADER_SIZE:end].lower(), variant), end


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

    __slots__ = ("_heads", "_serial", "_tail", "_tail_end", "qtype", "question", "rcode")

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
        head = rendered[2:HEADER_SIZE]
        self._heads = tuple(
            bytes((head[0] | variant & 1, head[1] | (_CD if variant & 2 else 0))) + head[2:]
            for variant in range(4)
        )
        self.qtype = qtype
        self.rcode = rcode
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

    def for_query(self, wire: bytes, question_end: int) -> bytes:
        """The response to ``wire``, a query whose key this response was stored under."""
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


def find_serial(rendered: bytes, question_end: int) -> int | None:
    """Where ``SERIAL_SENTINEL`` is in the records of ``rendered``; None unless exactly once."""
    sentinel = SERIAL_SENTINEL.to_bytes(4)
    at = rendered.find(sentinel, question_end)
    if at < 0 or rendered.find(sentinel, at + 1) >= 0:
        return None
    return at
