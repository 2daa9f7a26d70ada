"""The hand-parser of plain queries, and fitting a stored response to another query."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.tsigkeyring
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.dns.cache import AnswerCache
from node.dns.fastpath import (
    SERIAL_SENTINEL,
    Serial,
    StoredResponse,
    find_serial,
    has_plain_name,
    read_query,
)
from node.dns.query import AnswerConfig, respond
from node.zones.index import ZoneTable
from tests.zonefiles import edge_zones

UDP_PAYLOAD = 1232
CONFIG = AnswerConfig(udp_payload=UDP_PAYLOAD, nsid=b"peer53-test")


def wire_of(
    qname: str = "www.edge.example.",
    qtype: str = "A",
    *,
    edns: int | None = None,
    payload: int = 1232,
    dnssec_ok: bool = False,
    options: Sequence[dns.edns.Option] = (),
    flags: int = 0,
) -> bytes:
    query = dns.message.make_query(
        qname,
        qtype,
        use_edns=False if edns is None else edns,
        payload=payload,
        want_dnssec=dnssec_ok,
        options=list(options),
    )
    query.flags = flags
    return query.to_wire()


def read(wire: bytes, *, tcp: bool = False) -> tuple[tuple[bytes, int], int] | None:
    """The key, if the fast path takes the query: ``read_query``, and the name checked."""
    parsed = read_query(wire, tcp, UDP_PAYLOAD)
    if parsed is None or not has_plain_name(wire, parsed[1]):
        return None
    return parsed


def with_byte(wire: bytes, at: int, value: int) -> bytes:
    return wire[:at] + bytes((value,)) + wire[at + 1 :]


# --- what the fast path accepts, and its key ---


def test_plain_query_key_is_the_lower_cased_name() -> None:
    parsed = read(wire_of("WwW.Edge.EXAMPLE."))
    assert parsed is not None
    (name, _), end = parsed
    assert name == b"\x03www\x04edge\x07example\x00"
    assert end == len(wire_of())
    assert parsed == read(wire_of("www.edge.example."))


def test_type_and_class_bytes_are_not_lower_cased() -> None:
    # HTTPS is type 65 (0x41, "A"); lower-casing it would give type 97 (0x61, "a").
    assert read(wire_of(qtype="HTTPS")) != read(wire_of(qtype="TYPE97"))


def test_key_tells_apart_what_changes_the_response() -> None:
    keys = {
        "udp": read(wire_of()),
        "tcp": read(wire_of(), tcp=True),
        "edns": read(wire_of(edns=0)),
        "edns-do": read(wire_of(edns=0, dnssec_ok=True)),
        "edns-512": read(wire_of(edns=0, payload=512)),
        "aaaa": read(wire_of(qtype="AAAA")),
    }
    assert len({parsed[0] for parsed in keys.values() if parsed is not None}) == len(keys)


def test_payloads_that_give_the_same_limit_share_a_key() -> None:
    # Our limit caps the client's; below 512 counts as 512 (RFC 6891 §6.2.5).
    assert read(wire_of(edns=0, payload=4096)) == read(wire_of(edns=0, payload=1232))
    assert read(wire_of(edns=0, payload=100)) == read(wire_of(edns=0, payload=512))


def test_rd_cd_ad_and_the_id_do_not_change_the_key() -> None:
    plain = read(wire_of())
    flagged = wire_of(flags=dns.flags.RD | dns.flags.CD | dns.flags.AD)
    assert read(b"\xab\xcd" + flagged[2:]) == plain


def test_cookie_and_unknown_options_are_ignored_like_the_full_path_does() -> None:
    cookie = dns.edns.CookieOption(b"12345678", b"")
    unknown = dns.edns.GenericOption(dns.edns.OptionType.make(65001), b"\x01\x02")
    padding = dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\x00" * 8)
    assert read(wire_of(edns=0, options=[cookie, unknown, padding])) == read(wire_of(edns=0))


@pytest.mark.parametrize(
    "options",
    [
        [dns.edns.NSIDOption(b"")],  # changes the response
        [dns.edns.ECSOption("192.0.2.0", 24)],  # dnspython checks it, and may reject it
        [dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345")],  # bad cookie length
    ],
)
def test_options_that_matter_go_to_the_full_path(options: list[dns.edns.Option]) -> None:
    assert read(wire_of(edns=0, options=options)) is None


def test_unusual_shapes_go_to_the_full_path() -> None:
    plain = wire_of()
    with_opt = wire_of(edns=0)
    opt = len(plain)
    signed = dns.message.make_query("www.edge.example.", "A")
    signed.use_tsig(dns.tsigkeyring.from_text({"k.": "c2VjcmV0c2VjcmV0"}))
    compressed = plain[:12] + b"\x03www\xc0\x10" + plain[-4:]
    rejected = {
        "short": plain[:11],
        "response": with_byte(plain, 2, 0x80),
        "notify": with_byte(plain, 2, dns.opcode.NOTIFY << 3),
        "aa": with_byte(plain, 2, 0x04),
        "tc": with_byte(plain, 2, 0x02),
        "two questions": with_byte(plain, 5, 2),
        "an answer record": with_byte(plain, 7, 1),
        "trailing byte": plain + b"\x00",
        "cut question": plain[:-1],
        "compressed name": compressed,
        "tsig": signed.to_wire(),
        "edns version 1": with_byte(with_opt, opt + 6, 1),
        "extended rcode": with_byte(with_opt, opt + 5, 1),
        "opt owner not root": with_opt[:opt] + b"\x01a" + with_opt[opt + 1 :],
        "opt rdlength too long": with_byte(with_opt, opt + 10, 4),
        "option cut short": with_byte(with_opt, opt + 10, 3) + b"\x00\x0a\x00",
    }
    for name, wire in rejected.items():
        assert read(wire) is None, name


def test_name_longer_than_255_octets_goes_to_the_full_path() -> None:
    labels = b"".join(b"\x3f" + b"a" * 63 for _ in range(4))  # 257 octets with the root
    wire = wire_of()[:12] + labels + b"\x00\x00\x01\x00\x01"
    assert read(wire) is None
    assert read(wire_of(".".join(["a" * 63] * 3) + "." + "a" * 61 + ".")) is not None


# --- fitting a stored response ---


def rendered(*, flags: int = 0x8400) -> bytes:
    header = struct.pack("!HHHHHH", 0, flags, 1, 1, 0, 0)
    question = b"\x03www\x04edge\x07example\x00\x00\x06\x00\x01"
    soa = b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x0e\x10\x00\x16" + b"\x00\x00"
    return header + question + soa + SERIAL_SENTINEL.to_bytes(4) + bytes(16)


def test_for_query_copies_id_rd_cd_and_the_question_spelling() -> None:
    stored_wire = rendered()
    end = 12 + 22
    stored = StoredResponse(stored_wire, end, 6, 0)
    query = wire_of("WWW.edge.EXAMPLE.", "SOA", flags=dns.flags.RD | dns.flags.CD)
    response = stored.for_query(query, end)
    assert response[:2] == query[:2]
    assert response[2] == 0x85 and response[3] == 0x10
    assert response[12:end] == query[12:end]
    assert response[end:] == stored_wire[end:]
    plain = stored.for_query(wire_of("www.edge.example.", "SOA"), end)
    assert plain[2:4] == b"\x84\x00"


def test_for_query_patches_the_current_serial() -> None:
    stored_wire = rendered()
    end = 12 + 22
    at = find_serial(stored_wire, end)
    assert at is not None
    serial = Serial(2024)
    stored = StoredResponse(stored_wire, end, 6, 0, serial_at=at, serial=serial)
    query = wire_of("www.edge.example.", "SOA")
    assert stored.for_query(query, end)[at : at + 4] == (2024).to_bytes(4)
    serial.wire = (2025).to_bytes(4)
    response = stored.for_query(query, end)
    assert response[at : at + 4] == (2025).to_bytes(4)
    assert len(response) == len(stored_wire)


def test_serial_not_found_exactly_once_is_not_patched() -> None:
    twice = rendered() + SERIAL_SENTINEL.to_bytes(4)
    assert find_serial(twice, 34) is None
    assert find_serial(rendered()[:40], 34) is None


def test_exact_question_is_kept_only_when_asked() -> None:
    stored_wire = rendered()
    assert StoredResponse(stored_wire, 34, 6, 0).question is None
    assert (
        StoredResponse(stored_wire, 34, 6, 0, exact_question=True).question == (stored_wire[12:34])
    )


# --- any query: the cache answers exactly as the full path ---


@pytest.fixture(scope="module")
def zones() -> ZoneTable:
    return edge_zones()


QUERIES = [
    wire_of("www.edge.example."),
    wire_of("nope.edge.example.", "A", edns=0, dnssec_ok=True),
    wire_of("alias.edge.example.", "A", edns=0, payload=512),
    wire_of("x.y.wild.edge.example.", "MX", flags=dns.flags.RD),
    wire_of("edge.example.", "SOA", edns=0, options=[dns.edns.CookieOption(b"c" * 8, b"")]),
    wire_of("www.dname.edge.example.", "A"),
    wire_of("fat.edge.example.", "A"),
    wire_of("id.server.", "TXT"),
]


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(0, len(QUERIES) - 1),
    edits=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 3),
    tcp=st.booleans(),
)
def test_mutated_queries_get_the_full_path_response(
    zones: ZoneTable, index: int, edits: list[tuple[int, int]], cut: int, tcp: bool
) -> None:
    """Whatever the bytes, the cache sends the full path's response: on a miss, on a hit,
    and when the unmutated query's response is stored (a mutant must not match it)."""
    original = QUERIES[index]
    wire = bytearray(original[: len(original) - cut])
    for at, value in edits:
        if at < len(wire):
            wire[at] = value
    query = bytes(wire)
    cache = AnswerCache(zones, CONFIG)
    cache.respond(original, tcp)
    expected = respond(query, zones, CONFIG, tcp=tcp)
    assert cache.respond(query, tcp) == expected
    assert cache.respond(query, tcp) == expected


def test_unchecked_names_are_never_served_from_the_cache(zones: ZoneTable) -> None:
    """``read_query`` skips the label walk; a key it gives for a query whose name is not
    plain must not be stored, or match a stored key."""
    cache = AnswerCache(zones, CONFIG)
    plain = wire_of()
    compressed = plain[:12] + b"\x03www\xc0\x10" + plain[-4:]
    for wire in (plain, plain + b"\x00", compressed, compressed):
        assert cache.respond(wire, False) == respond(wire, zones, CONFIG, tcp=False)
    stats = cache.statistics()
    assert (stats.entries, stats.misses, stats.bypassed) == (1, 1, 3)


def test_ignored_options_are_served_from_the_cache(zones: ZoneTable) -> None:
    cache = AnswerCache(zones, CONFIG)
    plain = wire_of(edns=0)
    with_cookie = wire_of(edns=0, options=[dns.edns.CookieOption(b"c" * 8, b"s" * 8)])
    cache.respond(plain, False)
    assert cache.respond(with_cookie, False) == respond(with_cookie, zones, CONFIG, tcp=False)
    assert cache.statistics().hits == 1


def test_nsid_request_gets_nsid_through_the_full_path(zones: ZoneTable) -> None:
    cache = AnswerCache(zones, CONFIG)
    wire = wire_of(edns=0, options=[dns.edns.NSIDOption(b"")])
    response = dns.message.from_wire(cache.respond(wire, False) or b"")
    assert response.options[0].otype == dns.edns.OptionType.NSID
    assert cache.statistics().bypassed == 1
