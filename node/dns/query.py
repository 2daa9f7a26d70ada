"""From query bytes to response bytes: header checks, EDNS(0), dispatch and rendering.

Theory of operation: the listeners hand every datagram or TCP message to ``respond`` (by
way of ``cache.AnswerCache``, which keeps rendered responses) and send back whatever bytes
it returns (nothing at all for None). ``reply_to`` stops short of rendering, so the cache
can render a response its own way. The checks run in the order a server can act on them:

1. Too short for a header, or QR set: silence (answering responses invites loops).
2. Unparseable, or not exactly one question: FORMERR, echoing the ID, opcode, RD and CD
   and the question when that much parses; no OPT, since the OPT itself may be the fault.
3. EDNS version above 0: BADVERS with an OPT of version 0 (RFC 6891 §6.1.3).
4. Any opcode but QUERY: NOTIMP (NOTIFY and UPDATE belong to other modules).
5. A TSIG-signed query: NOTAUTH, as no keys are known here (RFC 8945 §5.2).
6. Otherwise the question is answered: CHAOS names by ``chaos``, IN (and class ANY) by
   ``answer.lookup``. AXFR and IXFR (transfers are not answers) and the reserved type 0
   are NOTIMP.

The response copies RD and CD (RFC 1035 §4.1.1, RFC 4035 §3.1.6) and, for EDNS queries,
carries an OPT with our UDP size, the DO bit copied, NSID when configured and asked for
(RFC 5001) and an extended error where the answer has one (RFC 8914). Unknown options are
ignored.

Size: UDP responses are limited to the client's EDNS size capped by ours, never below 512
(RFC 6891 §6.2.5), or 512 without EDNS; TCP allows 65535. When the answer, authority and
required glue do not fit, the response keeps only the header, the question and the OPT,
with TC set, so the client retries over TCP (RFC 9471 for glue, RFC 2308 §3 for the SOA of
negative answers). Optional additional records are added while they fit.

Records are written in the order they are stored, never shuffled: equal answers are equal
bytes, which is what lets ``cache`` render an answer once and reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.dns.answer import Answer, lookup
from node.dns.chaos import ServerIdentity, chaos_answer
from node.zones.index import ZoneTable

__all__ = [
    "AnswerConfig",
    "EdnsReply",
    "FormatError",
    "Reply",
    "ServerIdentity",
    "render",
    "reply_to",
    "respond",
]

HEADER_SIZE = 12
MIN_UDP_PAYLOAD = 512
MAX_TCP_MESSAGE = 65535
MAX_NSID = 128

_QR_BIT = 0x80  # in the third header byte
_OPCODE_BITS = 0x78  # likewise
_COPIED_FLAGS = dns.flags.RD | dns.flags.CD
_NOT_ANSWERS = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR, dns.rdatatype.NONE})

# dnspython turns every fault it finds in wire data, rdata included, into one of these.
_MALFORMED = dns.exception.DNSException


@dataclass(frozen=True)
class AnswerConfig:
    udp_payload: int = 1232
    """EDNS UDP size we advertise and the most we send over UDP."""
    nsid: bytes | None = None
    """RFC 5001 name server identifier; only sent when the client asks for it."""
    identity: ServerIdentity = field(default_factory=ServerIdentity)

    def __post_init__(self) -> None:
        if not MIN_UDP_PAYLOAD <= self.udp_payload <= MAX_TCP_MESSAGE:
            raise ValueError(f"udp_payload must be 512-65535, not {self.udp_payload}")
        if self.nsid is not None and len(self.nsid) > MAX_NSID:
            # Keeps a truncated response (header, question, OPT) within 512 bytes.
            raise ValueError(f"nsid must be at most {MAX_NSID} bytes")


@dataclass(frozen=True)
class EdnsReply:
    """What the response's OPT record says back to an EDNS client."""

    payload: int
    dnssec_ok: bool
    options: tuple[dns.edns.Option, ...] = ()


def respond(wire: bytes, zones: ZoneTable, config: AnswerConfig, *, tcp: bool) -> bytes | None:
    """The response to one DNS message; None = send nothing (QR set, too short, etc.)."""
    reply = reply_to(wire, zones, config, tcp=tcp)
    return None if reply is None else reply.render()


def reply_to(
    wire: bytes, zones: ZoneTable, config: AnswerConfig, *, tcp: bool
) -> Reply | FormatError | None:
    """The response to one DNS message before rendering, so a cache can keep its parts."""
    if len(wire) < HEADER_SIZE or wire[2] & _QR_BIT:
        return None
    opcode = dns.opcode.from_flags(int.from_bytes(wire[2:4], "big"))
    try:
        query = dns.message.from_wire(_as_standard_query(wire), keyring=False)
    except _MALFORMED:
        return FormatError(wire, opcode)
    if len(query.question) != 1:
        return FormatError(wire, opcode)
    question = query.question[0]
    edns = _edns_reply(query, config)
    if query.edns > 0:
        answer = Answer(dns.rcode.Rcode.BADVERS, authoritative=False)
    elif opcode != dns.opcode.QUERY:
        answer = Answer(dns.rcode.Rcode.NOTIMP, authoritative=False)
    elif query.had_tsig:
        answer = Answer(dns.rcode.Rcode.NOTAUTH, authoritative=False)
    else:
        answer = _answer(question, zones, config, tcp=tcp)
    limit = _size_limit(query, config, tcp=tcp)
    return Reply(query.id, opcode, query.flags, question, answer, edns, limit)


@dataclass(frozen=True)
class Reply:
    """Everything ``render`` needs for a response to a query that parsed."""

    query_id: int
    opcode: dns.opcode.Opcode
    query_flags: int
    question: dns.rrset.RRset
    answer: Answer
    edns: EdnsReply | None
    limit: int

    @property
    def rcode(self) -> dns.rcode.Rcode:
        return self.answer.rcode

    def render(self) -> bytes:
        return render(
            self.query_id,
            self.opcode,
            self.query_flags,
            self.question,
            self.answer,
            self.edns,
            self.limit,
        )


@dataclass(frozen=True)
class FormatError:
    """The FORMERR response to a query that did not parse (or had not one question)."""

    wire: bytes
    opcode: dns.opcode.Opcode
    rcode = dns.rcode.Rcode.FORMERR

    def render(self) -> bytes:
        return _format_error(self.wire, self.opcode)


def render(
    query_id: int,
    opcode: dns.opcode.Opcode,
    query_flags: int,
    question: dns.rrset.RRset,
    answer: Answer,
    edns: EdnsReply | None,
    limit: int,
) -> bytes:
    """Wire form of ``answer`` in at most ``limit`` bytes, truncated (TC) if it must be."""
    response = dns.message.Message(id=query_id)
    response.flags = dns.flags.QR | (query_flags & _COPIED_FLAGS)
    if answer.authoritative:
        response.flags |= dns.flags.AA
    response.set_opcode(opcode)
    response.question = [question]
    if edns is not None:
        options = list(edns.options)
        if answer.extended_error is not None:
            options.append(dns.edns.EDEOption(answer.extended_error))
        flags = dns.flags.DO if edns.dnssec_ok else 0
        response.use_edns(0, flags, edns.payload, options=options)
    response.set_rcode(answer.rcode)
    response.answer = list(answer.answer)
    response.authority = list(answer.authority)
    response.additional = [*answer.glue, *answer.additional]
    try:
        return response.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        pass
    response.additional = list(answer.glue)
    try:
        response.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit, want_shuffle=False)
    # What must be sent fits, so only optional additional records can fall off the end.
    response.additional = [*answer.glue, *answer.additional]
    return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


def _answer(
    question: dns.rrset.RRset, zones: ZoneTable, config: AnswerConfig, *, tcp: bool
) -> Answer:
    qtype = question.rdtype
    if qtype in _NOT_ANSWERS:
        return Answer(dns.rcode.Rcode.NOTIMP, authoritative=False)
    if question.rdclass == dns.rdataclass.CH:
        return chaos_answer(config.identity, question.name, qtype)
    # RFC 8482: over UDP one RRset answers ANY; TCP costs the asker a handshake, so all.
    return lookup(zones, question.name, qtype, question.rdclass, full_any=tcp)


def _as_standard_query(wire: bytes) -> bytes:
    """``wire`` with opcode 0, so dnspython parses any opcode's sections as a query's."""
    return wire[:2] + bytes((wire[2] & ~_OPCODE_BITS & 0xFF,)) + wire[3:]


def _edns_reply(query: dns.message.Message, config: AnswerConfig) -> EdnsReply | None:
    if query.edns < 0:
        return None
    wants_nsid = any(option.otype == dns.edns.OptionType.NSID for option in query.options)
    options = (dns.edns.NSIDOption(config.nsid),) if wants_nsid and config.nsid else ()
    dnssec_ok = bool(query.ednsflags & dns.flags.DO)
    return EdnsReply(config.udp_payload, dnssec_ok, options)


def _size_limit(query: dns.message.Message, config: AnswerConfig, *, tcp: bool) -> int:
    if tcp:
        return MAX_TCP_MESSAGE
    if query.edns < 0:
        return MIN_UDP_PAYLOAD
    return max(MIN_UDP_PAYLOAD, min(query.payload, config.udp_payload))


def _format_error(wire: bytes, opcode: dns.opcode.Opcode) -> bytes:
    response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    response.flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & _COPIED_FLAGS)
    response.set_opcode(opcode)
    response.set_rcode(dns.rcode.Rcode.FORMERR)
    try:
        parsed = dns.message.from_wire(_as_standard_query(wire), question_only=True)
    except _MALFORMED:
        return response.to_wire()
    if len(parsed.question) == 1:
        response.question = list(parsed.question)
    return response.to_wire()
