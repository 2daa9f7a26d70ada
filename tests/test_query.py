"""Packet-level behaviour of respond(): header checks, EDNS, truncation, ANY, CHAOS, fuzzing."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import pytest

from node.dns.query import AnswerConfig, ServerIdentity, respond
from node.zones.index import ZoneTable
from tests.zonefiles import edge_zones

Rcode = dns.rcode.Rcode
CONFIG = AnswerConfig(
    nsid=b"peer53-test",
    identity=ServerIdentity(id_server="node-1", hostname_bind="host-1", version_bind="peer53 0.1"),
)
OPT_OVERHEAD = 11
UNKNOWN_OPTION = dns.edns.OptionType.make(65001)


@pytest.fixture(scope="module")
def zones() -> ZoneTable:
    return edge_zones()


def query(
    qname: str,
    qtype: str = "A",
    qclass: str = "IN",
    *,
    edns: int | None = None,
    payload: int = 1232,
    options: Sequence[dns.edns.Option] = (),
    dnssec_ok: bool = False,
    flags: int = 0,
) -> dns.message.Message:
    message = dns.message.make_query(
        qname,
        qtype,
        qclass,
        use_edns=edns if edns is not None else False,
        payload=payload,
        options=list(options),
        want_dnssec=dnssec_ok,
    )
    message.flags = flags
    return message


def parse(wire: bytes) -> dns.message.Message:
    """dnspython reads an UPDATE's sections as zone/prerequisite/update, and rejects a
    zone section that is not SOA; read every opcode's sections as a query's instead."""
    return dns.message.from_wire(with_opcode(wire, 0))


def exchange(
    zones: ZoneTable,
    wire: bytes,
    *,
    tcp: bool = False,
    config: AnswerConfig = CONFIG,
) -> dns.message.Message:
    response = respond(wire, zones, config, tcp=tcp)
    assert response is not None
    return parse(response)


def ask(
    zones: ZoneTable, message: dns.message.Message, *, tcp: bool = False
) -> dns.message.Message:
    response = exchange(zones, message.to_wire(), tcp=tcp)
    assert response.id == message.id
    assert response.flags & dns.flags.QR
    return response


def header_only(wire: bytes) -> bytes:
    """A copy of a query whose header says QDCOUNT=0 and nothing follows."""
    return wire[:4] + b"\x00" * 8


def with_opcode(wire: bytes, opcode: int) -> bytes:
    return wire[:2] + bytes(((wire[2] & 0x87) | (opcode << 3),)) + wire[3:]


# --- silence and FORMERR ---


@pytest.mark.parametrize("wire", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"])
def test_too_short_for_a_header_gets_no_answer(zones: ZoneTable, wire: bytes) -> None:
    assert respond(wire, zones, CONFIG, tcp=False) is None


def test_responses_are_not_answered(zones: ZoneTable) -> None:
    wire = bytearray(query("www.edge.example.").to_wire())
    wire[2] |= 0x80
    assert respond(bytes(wire), zones, CONFIG, tcp=False) is None


def two_opts(message: dns.message.Message) -> bytes:
    wire = bytearray(message.to_wire())
    wire[11] = 2
    return bytes(wire + wire[-OPT_OVERHEAD:])


FORMERR_CASES = {
    "two OPT records": two_opts(query("www.edge.example.", edns=0, flags=dns.flags.RD)),
    "trailing junk": query("www.edge.example.", flags=dns.flags.RD).to_wire() + b"\x00",
    "OPT in the answer section": bytes(
        bytearray(query("www.edge.example.", edns=0, flags=dns.flags.RD).to_wire())[:7]
        + b"\x01\x00\x00\x00\x00"
        + query("www.edge.example.", edns=0).to_wire()[12:]
    ),
    "counted record missing": query("www.edge.example.", flags=dns.flags.RD).to_wire()[:7]
    + b"\x01"
    + query("www.edge.example.").to_wire()[8:],
}


@pytest.mark.parametrize("case", sorted(FORMERR_CASES))
def test_malformed_after_the_question_is_formerr_echoing_the_question(
    zones: ZoneTable, case: str
) -> None:
    wire = FORMERR_CASES[case]
    response = exchange(zones, wire)
    assert response.id == int.from_bytes(wire[:2], "big")
    assert response.rcode() == Rcode.FORMERR
    assert response.flags & dns.flags.RD
    assert not response.flags & dns.flags.AA
    assert [str(q.name) for q in response.question] == ["www.edge.example."]
    assert (response.answer, response.authority, response.additional) == ([], [], [])
    assert response.edns == -1


@pytest.mark.parametrize(
    "wire",
    [
        header_only(query("www.edge.example.").to_wire()),
        query("www.edge.example.").to_wire()[:20],
        query("www.edge.example.").to_wire()[:5]
        + b"\x02"
        + query("www.edge.example.").to_wire()[6:]
        + query("www.edge.example.").to_wire()[12:],
    ],
    ids=["no question", "cut-off question", "two questions"],
)
def test_without_exactly_one_question_formerr_echoes_only_the_header(
    zones: ZoneTable, wire: bytes
) -> None:
    response = exchange(zones, wire)
    assert response.id == int.from_bytes(wire[:2], "big")
    assert (response.rcode(), response.question) == (Rcode.FORMERR, [])


def test_opt_with_a_non_root_owner_is_formerr(zones: ZoneTable) -> None:
    wire = query("www.edge.example.", edns=0).to_wire()
    bad = wire[:-OPT_OVERHEAD] + b"\x01a\x00" + wire[-OPT_OVERHEAD + 1 :]
    assert exchange(zones, bad).rcode() == Rcode.FORMERR


# --- opcodes, TSIG, transfers ---


@pytest.mark.parametrize("opcode", [1, 2, 3, 4, 5, 6, 15])
def test_other_opcodes_are_notimp(zones: ZoneTable, opcode: int) -> None:
    wire = with_opcode(query("www.edge.example.", edns=0).to_wire(), opcode)
    raw = respond(wire, zones, CONFIG, tcp=False)
    assert raw is not None
    assert dns.opcode.from_flags(int.from_bytes(raw[2:4], "big")) == opcode
    response = parse(raw)
    assert response.rcode() == Rcode.NOTIMP
    assert [str(q.name) for q in response.question] == ["www.edge.example."]
    assert response.answer == []
    assert response.edns == 0


def test_tsig_signed_query_is_notauth(zones: ZoneTable) -> None:
    message = query("www.edge.example.")
    message.use_tsig(dns.tsigkeyring.from_text({"key.": "c2VjcmV0c2VjcmV0c2VjcmV0"}), "key.")
    response = ask(zones, message)
    assert (response.rcode(), response.answer) == (Rcode.NOTAUTH, [])


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR", "TYPE0"])
def test_transfers_and_type_zero_are_notimp(zones: ZoneTable, qtype: str) -> None:
    assert ask(zones, query("edge.example.", qtype)).rcode() == Rcode.NOTIMP


# --- header flags ---


def test_rd_and_cd_are_copied_ad_and_ra_are_not(zones: ZoneTable) -> None:
    flags = dns.flags.RD | dns.flags.CD | dns.flags.AD
    response = ask(zones, query("www.edge.example.", flags=flags))
    assert response.flags == dns.flags.QR | dns.flags.AA | dns.flags.RD | dns.flags.CD


def test_question_case_is_echoed_byte_for_byte(zones: ZoneTable) -> None:
    message = query("WwW.eDgE.ExAmPle.")
    wire = message.to_wire()
    response = respond(wire, zones, CONFIG, tcp=False)
    assert response is not None
    question_end = len(wire)
    assert response[12:question_end] == wire[12:question_end]
    parsed = dns.message.from_wire(response)
    assert parsed.answer[0].name.labels == (b"WwW", b"eDgE", b"ExAmPle", b"")


# --- EDNS (RFC 6891) ---


def test_no_opt_without_edns(zones: ZoneTable) -> None:
    assert ask(zones, query("www.edge.example.")).edns == -1


def test_opt_echoed_with_our_payload(zones: ZoneTable) -> None:
    response = ask(zones, query("www.edge.example.", edns=0, payload=4096))
    assert (response.edns, response.payload, response.ednsflags) == (0, 1232, 0)
    assert response.options == ()


def test_do_bit_is_copied(zones: ZoneTable) -> None:
    response = ask(zones, query("www.edge.example.", edns=0, dnssec_ok=True))
    assert response.ednsflags & dns.flags.DO


def test_unknown_edns_flags_and_options_are_ignored(zones: ZoneTable) -> None:
    message = query(
        "www.edge.example.",
        edns=0,
        options=[
            dns.edns.GenericOption(UNKNOWN_OPTION, b"xx"),
            dns.edns.GenericOption(dns.edns.COOKIE, b"12345678"),
        ],
    )
    message.ednsflags |= 0x4000
    response = ask(zones, message)
    assert (response.rcode(), response.options, response.ednsflags) == (Rcode.NOERROR, (), 0)


def test_nsid_only_when_asked(zones: ZoneTable) -> None:
    nsid = [dns.edns.GenericOption(dns.edns.NSID, b"")]
    asked = ask(zones, query("www.edge.example.", edns=0, options=nsid))
    assert [(o.otype, o.to_wire()) for o in asked.options] == [(dns.edns.NSID, b"peer53-test")]
    unconfigured = exchange(
        zones, query("www.edge.example.", edns=0, options=nsid).to_wire(), config=AnswerConfig()
    )
    assert unconfigured.options == ()


def test_badvers_for_edns_versions_above_zero(zones: ZoneTable) -> None:
    nsid = [dns.edns.GenericOption(dns.edns.NSID, b"")]
    response = ask(zones, query("www.edge.example.", edns=1, dnssec_ok=True, options=nsid))
    assert response.rcode() == Rcode.BADVERS
    assert (response.edns, response.payload) == (0, 1232)
    assert response.ednsflags & dns.flags.DO
    assert not response.flags & dns.flags.AA
    assert response.answer == []
    assert [o.otype for o in response.options] == [dns.edns.NSID]


def test_refused_carries_extended_error_not_authoritative(zones: ZoneTable) -> None:
    response = ask(zones, query("www.outside.test.", edns=0))
    assert response.rcode() == Rcode.REFUSED
    assert [(o.otype, o.code) for o in response.options] == [
        (dns.edns.OptionType.EDE, dns.edns.EDECode.NOT_AUTHORITATIVE)
    ]
    assert ask(zones, query("www.outside.test.")).edns == -1


@pytest.mark.parametrize(
    "settings", [{"udp_payload": 511}, {"udp_payload": 65536}, {"nsid": b"n" * 129}]
)
def test_config_rejects_sizes_that_cannot_work(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AnswerConfig(**settings)


# --- truncation ---

BIG_TXT_SIZE = 749


@pytest.mark.parametrize(
    ("edns", "payload", "our_payload", "truncated"),
    [
        (None, 0, 1232, True),
        (0, 100, 1232, True),
        (0, 700, 1232, True),
        (0, 1232, 1232, False),
        (0, 4096, 1232, False),
        (0, 4096, 700, True),
    ],
)
def test_udp_limit_is_client_size_capped_by_ours(
    zones: ZoneTable, edns: int | None, payload: int, our_payload: int, truncated: bool
) -> None:
    config = AnswerConfig(udp_payload=our_payload)
    wire = query("big.edge.example.", "TXT", edns=edns, payload=payload).to_wire()
    response = exchange(zones, wire, config=config)
    assert bool(response.flags & dns.flags.TC) == truncated
    assert len(response.answer) == (0 if truncated else 1)


def test_truncated_response_keeps_question_opt_and_aa_only(zones: ZoneTable) -> None:
    nsid = [dns.edns.GenericOption(dns.edns.NSID, b"")]
    response = ask(zones, query("huge.edge.example.", "TXT", edns=0, options=nsid))
    assert response.flags & dns.flags.TC
    assert response.flags & dns.flags.AA
    assert [str(q.name) for q in response.question] == ["huge.edge.example."]
    assert (response.answer, response.authority, response.additional) == ([], [], [])
    assert [o.otype for o in response.options] == [dns.edns.NSID]


def test_tcp_answers_in_full(zones: ZoneTable) -> None:
    response = ask(zones, query("huge.edge.example.", "TXT"), tcp=True)
    assert not response.flags & dns.flags.TC
    assert len(response.to_wire()) > BIG_TXT_SIZE


def test_referral_whose_in_domain_glue_does_not_fit_is_truncated(zones: ZoneTable) -> None:
    response = ask(zones, query("www.fat.edge.example."))
    assert response.flags & dns.flags.TC
    assert (response.authority, response.additional) == ([], [])
    full = ask(zones, query("www.fat.edge.example.", edns=0))
    assert not full.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in full.additional) == 12


def test_optional_glue_is_dropped_without_truncation(zones: ZoneTable) -> None:
    limited = ask(zones, query("www.sidefat.edge.example."))
    assert not limited.flags & dns.flags.TC
    assert len(limited.authority[0]) == 7
    full = ask(zones, query("www.sidefat.edge.example."), tcp=True)
    assert 0 < len(limited.additional) < len(full.additional)


def test_negative_answer_whose_soa_does_not_fit_is_truncated(zones: ZoneTable) -> None:
    response = ask(zones, query("x.long.edge.example."))
    assert response.flags & dns.flags.TC
    assert response.rcode() == Rcode.NXDOMAIN
    full = ask(zones, query("x.long.edge.example.", edns=0))
    assert [rrset.rdtype for rrset in full.authority] == [dns.rdatatype.SOA]


# --- ANY (RFC 8482) ---


def test_any_over_udp_is_one_rrset(zones: ZoneTable) -> None:
    response = ask(zones, query("edge.example.", "ANY"))
    assert [rrset.rdtype for rrset in response.answer] == [dns.rdatatype.A]


def test_any_over_tcp_is_every_rrset(zones: ZoneTable) -> None:
    response = ask(zones, query("edge.example.", "ANY"), tcp=True)
    assert len(response.answer) == 5


# --- CHAOS ---


@pytest.mark.parametrize(
    ("qname", "text"),
    [
        ("id.server.", "node-1"),
        ("hostname.bind.", "host-1"),
        ("version.bind.", "peer53 0.1"),
        ("VERSION.Server.", "peer53 0.1"),
    ],
)
def test_chaos_identity(zones: ZoneTable, qname: str, text: str) -> None:
    response = ask(zones, query(qname, "TXT", "CH", edns=0))
    assert response.rcode() == Rcode.NOERROR
    assert not response.flags & dns.flags.AA
    (rrset,) = response.answer
    assert (rrset.rdclass, rrset.ttl) == (dns.rdataclass.CH, 0)
    assert rrset.name.labels == dns.name.from_text(qname).labels
    assert [s.decode() for s in rrset[0].strings] == [text]
    assert response.edns == 0


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [
        ("authors.bind.", "TXT"),
        ("www.edge.example.", "TXT"),
        ("id.server.", "A"),
        ("id.server.", "ANY"),
    ],
)
def test_other_chaos_questions_are_refused(zones: ZoneTable, qname: str, qtype: str) -> None:
    response = ask(zones, query(qname, qtype, "CH"))
    assert (response.rcode(), response.answer) == (Rcode.REFUSED, [])
    assert not response.flags & dns.flags.AA


def test_hidden_identity_is_refused(zones: ZoneTable) -> None:
    config = AnswerConfig(
        identity=ServerIdentity(id_server="x", hostname_bind=None, version_bind=None)
    )
    wire = query("version.bind.", "TXT", "CH").to_wire()
    assert exchange(zones, wire, config=config).rcode() == Rcode.REFUSED


def test_long_identity_is_split_into_character_strings(zones: ZoneTable) -> None:
    config = AnswerConfig(identity=ServerIdentity(id_server="n" * 300))
    response = exchange(zones, query("id.server.", "TXT", "CH").to_wire(), config=config)
    assert [len(s) for s in response.answer[0][0].strings] == [255, 45]


# --- fuzzing ---

FUZZ_CASES = 4000


def seed_queries() -> list[bytes]:
    nsid = [dns.edns.GenericOption(dns.edns.NSID, b"")]
    messages = [
        query("www.edge.example."),
        query("x.wild.edge.example.", "MX", edns=0, dnssec_ok=True),
        query("host.sub.edge.example.", "A", edns=0, options=nsid),
        query("www.dname.edge.example.", "ANY"),
        query("id.server.", "TXT", "CH"),
        query("nothing.edge.example.", "AAAA", edns=0, payload=512),
        query("edge.example.", "NS", flags=dns.flags.RD),
    ]
    return [message.to_wire() for message in messages]


def mutate(rng: random.Random, wire: bytes) -> bytes:
    data = bytearray(wire)
    choice = rng.randrange(6)
    if choice == 0:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:
        data = data[: rng.randrange(len(data))]
    elif choice == 2:
        data += rng.randbytes(rng.randint(1, 40))
    elif choice == 3:
        position = rng.randrange(4, 12)
        data[position] = rng.randrange(4)
    elif choice == 4:
        start = rng.randrange(len(data))
        data[start:start] = data[rng.randrange(len(data)) :][: rng.randint(1, 20)]
    else:
        data = bytearray(rng.randbytes(rng.randint(0, 80)))
    return bytes(data)


def test_fuzzed_packets_never_raise(zones: ZoneTable) -> None:
    rng = random.Random(5353)
    seeds = seed_queries()
    answered = 0
    for _ in range(FUZZ_CASES):
        wire = mutate(rng, rng.choice(seeds))
        tcp = rng.random() < 0.2
        response = respond(wire, zones, CONFIG, tcp=tcp)
        if response is None:
            assert len(wire) < 12 or wire[2] & 0x80
            continue
        answered += 1
        parsed = parse(response)
        assert parsed.id == int.from_bytes(wire[:2], "big")
        assert parsed.flags & dns.flags.QR
        assert tcp or len(response) <= 1232
    assert answered > FUZZ_CASES // 2
