"""Validation of RRset writes and whole zones: node/zones/validate.py."""

from __future__ import annotations

from collections.abc import Callable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.zones.index import Zone
from node.zones.served import address_rdata
from node.zones.validate import (
    MAX_TTL,
    ValidationError,
    check_zone_change,
    check_zone_rrsets,
    parse_owner,
    parse_rdtype,
    parse_rrset,
)

ORIGIN = dns.name.from_text("example.com.")
RRSIG_A = "A 13 3 60 20300101000000 20200101000000 1 example.com. AAAA"
RRSIG_NS = "NS 13 3 60 20300101000000 20200101000000 1 example.com. AAAA"


def rrset(name: str, rdtype: str, *records: str, ttl: int = 300) -> dns.rrset.RRset:
    return parse_rrset(ORIGIN, name, rdtype, ttl, list(records))


def base_zone() -> Zone:
    zone = Zone(ORIGIN)
    for data in (
        rrset("@", "SOA", "ns1 hostmaster 1 7200 3600 1209600 300"),
        rrset("@", "NS", "ns1", "ns2.example.net."),
        rrset("ns1", "A", "192.0.2.1"),
        rrset("www", "A", "192.0.2.2"),
        rrset("alias", "CNAME", "www"),
        rrset("moved", "DNAME", "example.net."),
        rrset("a.b.c", "TXT", "deep"),
    ):
        zone.put(data)
    return zone


def key(name: str, rdtype: str) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    return dns.name.from_text(name, ORIGIN), dns.rdatatype.from_text(rdtype)


def raises(code: str, field: str, call: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        call()
    assert (raised.value.code, raised.value.field) == (code, field), raised.value.message
    assert str(raised.value) == raised.value.message
    return raised.value


# --- parse_owner -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@", "example.com."),
        ("www", "www.example.com."),
        ("WWW.Sub", "www.sub.example.com."),
        ("www.example.com.", "www.example.com."),
        ("*.wild", "*.wild.example.com."),
        ("a\\.b", "a\\.b.example.com."),
    ],
)
def test_parse_owner(text: str, expected: str) -> None:
    owner = parse_owner(ORIGIN, text)
    assert owner.to_text() == expected
    assert owner.labels == dns.name.from_text(expected).labels  # lower-cased


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "invalid_name"),
        ("a..b", "invalid_name"),
        ("x" * 64, "invalid_name"),
        ("a." * 125 + "a", "invalid_name"),
        ("trailing\\", "invalid_name"),
        ("example.org.", "out_of_zone"),
        ("com.", "out_of_zone"),
    ],
)
def test_parse_owner_refuses(text: str, code: str) -> None:
    raises(code, "name", lambda: parse_owner(ORIGIN, text))


# --- parse_rdtype ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A", 1), ("aaaa", 28), ("TYPE65280", 65280), ("TYPE1", 1), ("HTTPS", 65), ("CAA", 257)],
)
def test_parse_rdtype(text: str, expected: int) -> None:
    assert parse_rdtype(text) == expected


# fmt: off
NOT_STORABLE = [
    "FOO", "", "A A", "TYPE65536", "TYPE-1", "ANY", "AXFR", "IXFR", "OPT", "TSIG", "TKEY",
    "MAILA", "TYPE255", "TYPE0", "NONE",
]
# fmt: on


@pytest.mark.parametrize("text", NOT_STORABLE)
def test_parse_rdtype_refuses_unknown_and_meta_types(text: str) -> None:
    raises("invalid_type", "type", lambda: parse_rdtype(text))


# --- parse_rrset -----------------------------------------------------------------------


def test_parse_rrset_makes_names_absolute_relative_to_the_zone() -> None:
    mx = rrset("Mail", "MX", "10 mx1", "20 mx2.example.net.", "10 mx1", ttl=600)

    assert mx.name == dns.name.from_text("mail.example.com.")
    assert mx.ttl == 600
    assert sorted(rd.to_text() for rd in mx) == ["10 mx1.example.com.", "20 mx2.example.net."]


def test_parse_rrset_reads_generic_and_long_forms() -> None:
    (unknown,) = rrset("u", "TYPE65280", "\\# 4 0a000001")
    assert isinstance(unknown, dns.rdata.GenericRdata)
    assert unknown.data == bytes.fromhex("0a000001")
    assert rrset("a", "A", "\\# 4 c0000201")[0].to_text() == "192.0.2.1"
    (txt,) = rrset("t", "TXT", f'"{"x" * 300}" "end" ; comment')
    assert txt.strings == (b"x" * 255, b"x" * 45, b"end")
    assert len(rrset("s", "RRSIG", RRSIG_A, RRSIG_A.replace(" 1 ", " 2 "))) == 2


@pytest.mark.parametrize("ttl", [0, 1, MAX_TTL])
def test_parse_rrset_accepts_ttl_bounds(ttl: int) -> None:
    assert rrset("www", "A", "192.0.2.1", ttl=ttl).ttl == ttl


@pytest.mark.parametrize("ttl", [-1, MAX_TTL + 1, 2**32, True, 1.5, "300"])
def test_parse_rrset_refuses_bad_ttl(ttl: object) -> None:
    raises("invalid_ttl", "ttl", lambda: parse_rrset(ORIGIN, "www", "A", ttl, ["192.0.2.1"]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "rdtype", "records", "code", "field"),
    [
        ("www", "A", [], "empty_rrset", "records"),
        ("www", "A", ["192.0.2.1", "192.0.2.2", "192.0.2.300"], "invalid_rdata", "records[2]"),
        ("www", "A", ["192.0.2.1 192.0.2.2"], "invalid_rdata", "records[0]"),
        ("www", "A", ["192.0.2.1\n192.0.2.2"], "invalid_rdata", "records[0]"),
        ("www", "A", [""], "invalid_rdata", "records[0]"),
        ("www", "MX", ["10"], "invalid_rdata", "records[0]"),
        ("www", "MX", ["10 a..b"], "invalid_rdata", "records[0]"),
        ("www", "TXT", ['"open'], "invalid_rdata", "records[0]"),
        ("www", "CAA", ["0 issue"], "invalid_rdata", "records[0]"),
        ("www", "TYPE65280", ["0a000001"], "invalid_rdata", "records[0]"),
        ("www", "TYPE65280", ["\\# 5 0a000001"], "invalid_rdata", "records[0]"),
        ("www", "CNAME", ["a", "b"], "singleton_conflict", "records[1]"),
        ("www", "DNAME", ["a.", "b."], "singleton_conflict", "records[1]"),
        ("@", "SOA", ["ns1 h 1 2 3 4 5", "ns1 h 2 2 3 4 5"], "singleton_conflict", "records[1]"),
        ("www", "RRSIG", [RRSIG_A, RRSIG_NS], "invalid_rdata", "records[1]"),
        ("sub", "SOA", ["ns1 h 1 2 3 4 5"], "soa_not_at_apex", "type"),
        ("www.example.net.", "A", ["192.0.2.1"], "out_of_zone", "name"),
        ("www", "ANY", ["192.0.2.1"], "invalid_type", "type"),
        ("www", "BOGUS", ["192.0.2.1"], "invalid_type", "type"),
        ("a..b", "A", ["192.0.2.1"], "invalid_name", "name"),
    ],
)
def test_parse_rrset_names_the_field_at_fault(
    name: str, rdtype: str, records: list[str], code: str, field: str
) -> None:
    raises(code, field, lambda: parse_rrset(ORIGIN, name, rdtype, 300, records))


def test_duplicate_singleton_record_is_not_a_conflict() -> None:
    assert len(rrset("www", "CNAME", "target", "target.example.com.")) == 1


# --- check_zone_change -----------------------------------------------------------------


def test_valid_changes_pass_and_leave_the_zone_alone() -> None:
    zone = base_zone()
    version = zone.version
    check_zone_change(
        zone,
        {
            key("www", "A"): rrset("www", "A", "192.0.2.9"),
            key("www", "AAAA"): rrset("www", "AAAA", "2001:db8::9"),
            key("new.sub", "TXT"): rrset("new.sub", "TXT", "hello"),
            key("a.b.c", "TXT"): None,
            key("@", "NS"): rrset("@", "NS", "ns3.example.net."),
            key("@", "MX"): rrset("@", "MX", "10 www"),
            key("moved", "TXT"): rrset("moved", "TXT", "beside the DNAME is fine"),
            key("nothing.here", "A"): None,
        },
    )
    assert zone.version == version


def test_cname_may_replace_other_data_in_one_change() -> None:
    check_zone_change(
        base_zone(),
        {key("www", "A"): None, key("www", "CNAME"): rrset("www", "CNAME", "alias")},
    )


def test_cname_may_sit_beside_rrsig_and_nsec() -> None:
    check_zone_change(
        base_zone(),
        {
            key("alias", "RRSIG"): rrset("alias", "RRSIG", RRSIG_A.replace("A ", "CNAME ", 1)),
            key("alias", "NSEC"): rrset("alias", "NSEC", "www CNAME RRSIG NSEC"),
        },
    )


@pytest.mark.parametrize(
    ("changes", "code", "field", "owner"),
    [
        ({key("www", "CNAME"): rrset("www", "CNAME", "x")}, "cname_conflict", "type", "www"),
        ({key("alias", "TXT"): rrset("alias", "TXT", "x")}, "cname_conflict", "type", "alias"),
        ({key("@", "CNAME"): rrset("@", "CNAME", "x.")}, "cname_conflict", "type", "@"),
        ({key("@", "SOA"): None}, "missing_soa", "type", "@"),
        ({key("@", "NS"): None}, "missing_ns", "type", "@"),
        (
            {key("sub", "NS"): rrset("sub", "NS", "ns1"), key("@", "NS"): None},
            "missing_ns",
            "type",
            "@",
        ),
        ({key("c", "DNAME"): rrset("c", "DNAME", "example.net.")}, "dname_conflict", "type", "c"),
        (
            {key("x.moved", "A"): rrset("x.moved", "A", "192.0.2.1")},
            "dname_conflict",
            "name",
            "x.moved",
        ),
        (
            {
                key("q", "DNAME"): rrset("q", "DNAME", "example.net."),
                key("z.q", "A"): rrset("z.q", "A", "192.0.2.1"),
            },
            "dname_conflict",
            "name",
            "z.q",
        ),
        ({key("@", "DNAME"): rrset("@", "DNAME", "example.net.")}, "dname_conflict", "type", "@"),
    ],
)
def test_check_zone_change_refuses(
    changes: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset | None],
    code: str,
    field: str,
    owner: str,
) -> None:
    error = raises(code, field, lambda: check_zone_change(base_zone(), changes))
    assert error.owner == dns.name.from_text(owner, ORIGIN)


def test_dname_is_allowed_once_the_data_below_goes() -> None:
    check_zone_change(
        base_zone(),
        {key("c", "DNAME"): rrset("c", "DNAME", "example.net."), key("a.b.c", "TXT"): None},
    )


def test_soa_away_from_the_apex_is_refused() -> None:
    soa = rrset("@", "SOA", "ns1 h 1 2 3 4 5")
    elsewhere = dns.rrset.from_rdata(dns.name.from_text("sub.example.com."), 300, soa[0])
    raises(
        "soa_not_at_apex",
        "type",
        lambda: check_zone_change(base_zone(), {key("sub", "SOA"): elsewhere}),
    )


def test_owner_outside_the_zone_is_refused_even_for_deletes() -> None:
    outside = dns.name.from_text("www.example.net.")
    raises(
        "out_of_zone",
        "name",
        lambda: check_zone_change(base_zone(), {(outside, dns.rdatatype.A): None}),
    )


@pytest.mark.parametrize("ttl", [MAX_TTL + 1, 2**32 - 1])
def test_ttl_beyond_31_bits_is_refused(ttl: int) -> None:
    data = dns.rrset.from_text("www.example.com.", ttl, "IN", "A", "192.0.2.1")
    error = raises(
        "invalid_ttl", "ttl", lambda: check_zone_change(base_zone(), {key("www", "A"): data})
    )
    assert error.rdtype == dns.rdatatype.A


def test_meta_type_rrset_is_refused() -> None:
    data = dns.rrset.from_text("www.example.com.", 300, "IN", "TYPE255", "\\# 0")
    raises(
        "invalid_type", "type", lambda: check_zone_change(base_zone(), {key("www", "ANY"): data})
    )


def test_empty_rrset_counts_as_a_delete() -> None:
    empty = dns.rrset.RRset(ORIGIN, dns.rdataclass.IN, dns.rdatatype.NS)
    raises("missing_ns", "type", lambda: check_zone_change(base_zone(), {key("@", "NS"): empty}))


def test_dname_check_sees_only_names_strictly_below() -> None:
    zone = base_zone()
    zone.put(rrset("sib", "A", "192.0.2.1"))
    zone.put(rrset("sibling", "A", "192.0.2.1"))
    check_zone_change(zone, {key("sib", "DNAME"): rrset("sib", "DNAME", "example.net.")})


# --- check_zone_rrsets -----------------------------------------------------------------


def test_whole_zone_passes() -> None:
    check_zone_rrsets(ORIGIN, list(base_zone().rrsets()))


@pytest.mark.parametrize(
    ("drop", "extra", "code"),
    [
        ("SOA", [], "missing_soa"),
        ("NS", [], "missing_ns"),
        (None, [rrset("www", "CNAME", "alias")], "cname_conflict"),
        (None, [rrset("x.moved", "A", "192.0.2.1")], "dname_conflict"),
        (None, [rrset("WWW", "A", "192.0.2.3")], "duplicate_rrset"),
    ],
)
def test_whole_zone_rules(drop: str | None, extra: list[dns.rrset.RRset], code: str) -> None:
    kept = [r for r in base_zone().rrsets() if dns.rdatatype.to_text(r.rdtype) != drop]
    with pytest.raises(ValidationError) as raised:
        check_zone_rrsets(ORIGIN, kept + extra)
    assert raised.value.code == code


def test_whole_zone_refuses_out_of_zone_owner() -> None:
    stray = dns.rrset.from_text("www.example.net.", 300, "IN", "A", "192.0.2.1")
    raises("out_of_zone", "name", lambda: check_zone_rrsets(ORIGIN, [*base_zone().rrsets(), stray]))


@pytest.mark.parametrize(
    ("rdtype", "text"),
    [
        ("A", "192.0.2.1"),
        ("A", "0.0.0.0"),
        ("AAAA", "2001:db8::1"),
        ("AAAA", "2001:DB8:0:0:0:0:0:1"),
        ("AAAA", "::ffff:192.0.2.1"),
    ],
)
def test_addresses_parse_without_a_tokenizer_as_with_one(rdtype: str, text: str) -> None:
    kind = dns.rdatatype.from_text(rdtype)
    quick = address_rdata(kind, text)
    assert quick is not None
    slow = dns.rdata.from_text(dns.rdataclass.IN, kind, text)
    assert quick == slow and quick.to_text() == slow.to_text()
    assert rrset("www", rdtype, text)[0] == slow


@pytest.mark.parametrize(
    ("rdtype", "text"),
    [("A", " 192.0.2.1"), ("A", "192.0.2.1 ; c"), ("AAAA", "(2001:db8::1)"), ("MX", "10 mx")],
)
def test_text_a_tokenizer_must_read_takes_the_full_parse(rdtype: str, text: str) -> None:
    assert address_rdata(dns.rdatatype.from_text(rdtype), text) is None


@pytest.mark.parametrize(
    "text", ["192.0.2.256", "192.0.2", "01.2.3.4", "١٩٢.0.2.1", "192.0.2.1 192.0.2.2"]
)
def test_bad_addresses_get_the_full_parse_error(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rrset("www", "A", text)
    assert caught.value.code == "invalid_rdata"
    assert "is not valid A data" in caught.value.message or "more than one" in caught.value.message
