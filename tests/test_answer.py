"""The RFC 1034 §4.3.2 lookup over the edge-case zones in tests/data (and a few inline ones)."""

from __future__ import annotations

import dns.edns
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from node.dns.answer import MAX_CHAIN, Answer, lookup
from node.zones.index import Zone, ZoneTable
from tests.zonefiles import edge_zones, zone_from_text

Rcode = dns.rcode.Rcode
IN = dns.rdataclass.IN

SOA_NEGATIVE = (
    "edge.example. 300 in soa ns1.edge.example. hostmaster.edge.example. "
    "2024010101 7200 3600 1209600 300"
)


@pytest.fixture(scope="module")
def zones() -> ZoneTable:
    return edge_zones()


def ask(
    zones: ZoneTable,
    qname: str,
    qtype: str = "A",
    *,
    qclass: dns.rdataclass.RdataClass = IN,
    full_any: bool = False,
) -> Answer:
    return lookup(
        zones,
        dns.name.from_text(qname),
        dns.rdatatype.from_text(qtype),
        qclass,
        full_any=full_any,
    )


def texts(rrsets: tuple[dns.rrset.RRset, ...]) -> list[str]:
    """Records as lower-cased presentation lines, one per rdata, sorted."""
    return sorted(line.lower() for rrset in rrsets for line in rrset.to_text().splitlines())


def table(*zones: Zone) -> ZoneTable:
    result = ZoneTable()
    for zone in zones:
        result.add(zone)
    return result


MINI = """
$TTL 600
@ SOA ns hostmaster 1 2 3 4 {minimum}
@ NS ns
ns A 192.0.2.1
"""


# --- exact matches, NODATA, NXDOMAIN, empty non-terminals ---


def test_exact_match_is_authoritative_with_nothing_else(zones: ZoneTable) -> None:
    result = ask(zones, "www.edge.example.")
    assert result.rcode == Rcode.NOERROR
    assert result.authoritative
    assert texts(result.answer) == ["www.edge.example. 3600 in a 192.0.2.80"]
    assert result.authority == result.glue == result.additional == ()


def test_answer_owner_keeps_the_query_spelling(zones: ZoneTable) -> None:
    result = ask(zones, "WwW.EdGe.ExAmPlE.")
    assert result.answer[0].name.labels == (b"WwW", b"EdGe", b"ExAmPlE", b"")


def test_nodata_has_soa_with_negative_ttl(zones: ZoneTable) -> None:
    result = ask(zones, "www.edge.example.", "TXT")
    assert (result.rcode, result.authoritative, result.answer) == (Rcode.NOERROR, True, ())
    assert texts(result.authority) == [SOA_NEGATIVE]


def test_nxdomain_has_soa(zones: ZoneTable) -> None:
    result = ask(zones, "nothing.edge.example.")
    assert (result.rcode, result.authoritative, result.answer) == (Rcode.NXDOMAIN, True, ())
    assert texts(result.authority) == [SOA_NEGATIVE]


@pytest.mark.parametrize(("minimum", "ttl"), [(300, 300), (6000, 600)])
def test_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum(minimum: int, ttl: int) -> None:
    zones = table(zone_from_text(MINI.format(minimum=minimum), "mini.test."))
    result = ask(zones, "missing.mini.test.")
    assert result.authority[0].ttl == ttl


@pytest.mark.parametrize("qname", ["ent.edge.example.", "b.ent.edge.example."])
def test_empty_non_terminal_is_nodata(zones: ZoneTable, qname: str) -> None:
    result = ask(zones, qname)
    assert (result.rcode, result.answer) == (Rcode.NOERROR, ())
    assert texts(result.authority) == [SOA_NEGATIVE]


def test_below_empty_non_terminal_is_nxdomain(zones: ZoneTable) -> None:
    assert ask(zones, "zzz.b.ent.edge.example.").rcode == Rcode.NXDOMAIN


def test_unknown_type_is_served_in_rfc3597_form(zones: ZoneTable) -> None:
    result = ask(zones, "unknown.edge.example.", "TYPE65280")
    assert texts(result.answer) == ["unknown.edge.example. 3600 in type65280 \\# 4 01020304"]


def test_zone_without_soa_is_servfail() -> None:
    zone = Zone(dns.name.from_text("empty.test."))
    zone.put(dns.rrset.from_text("www.empty.test.", 60, "IN", "A", "192.0.2.1"))
    result = ask(table(zone), "www.empty.test.")
    assert (result.rcode, result.authoritative) == (Rcode.SERVFAIL, False)


# --- zone selection ---


def test_name_in_no_zone_is_refused_with_extended_error(zones: ZoneTable) -> None:
    result = ask(zones, "www.outside.test.")
    assert (result.rcode, result.authoritative) == (Rcode.REFUSED, False)
    assert result.extended_error == dns.edns.EDECode.NOT_AUTHORITATIVE


def test_other_classes_are_refused(zones: ZoneTable) -> None:
    result = ask(zones, "www.edge.example.", qclass=dns.rdataclass.HS)
    assert (result.rcode, result.extended_error) == (Rcode.REFUSED, None)


def test_class_any_is_answered_from_in(zones: ZoneTable) -> None:
    result = ask(zones, "www.edge.example.", qclass=dns.rdataclass.ANY)
    assert texts(result.answer) == ["www.edge.example. 3600 in a 192.0.2.80"]


def test_most_specific_zone_answers(zones: ZoneTable) -> None:
    result = ask(zones, "www.child.edge.example.")
    assert (result.authoritative, texts(result.answer)) == (
        True,
        ["www.child.edge.example. 3600 in a 192.0.2.161"],
    )
    nx = ask(zones, "nothing.child.edge.example.")
    assert nx.authority[0].name == dns.name.from_text("child.edge.example.")


def test_child_apex_ns_comes_from_the_child(zones: ZoneTable) -> None:
    result = ask(zones, "child.edge.example.", "NS")
    assert result.authoritative
    assert texts(result.answer) == ["child.edge.example. 3600 in ns ns1.child.edge.example."]


def test_ds_at_child_apex_comes_from_the_parent(zones: ZoneTable) -> None:
    result = ask(zones, "child.edge.example.", "DS")
    assert result.authoritative
    assert [rd.key_tag for rd in result.answer[0]] == [54321]


def test_ds_at_apex_without_served_parent_is_nodata(zones: ZoneTable) -> None:
    result = ask(zones, "edge.example.", "DS")
    assert (result.rcode, result.answer, texts(result.authority)) == (
        Rcode.NOERROR,
        (),
        [SOA_NEGATIVE],
    )


def test_ds_for_root_does_not_look_for_a_parent(zones: ZoneTable) -> None:
    assert ask(zones, ".", "DS").rcode == Rcode.REFUSED


# --- delegations ---


def test_referral_has_ns_and_glue_but_no_aa(zones: ZoneTable) -> None:
    result = ask(zones, "host.sub.edge.example.")
    assert (result.rcode, result.authoritative, result.answer) == (Rcode.NOERROR, False, ())
    assert texts(result.authority) == [
        "sub.edge.example. 3600 in ns ns.outside.test.",
        "sub.edge.example. 3600 in ns ns.sub.edge.example.",
        "sub.edge.example. 3600 in ns ns1.edge.example.",
        "sub.edge.example. 3600 in ns ns2.sub.edge.example.",
    ]
    assert texts(result.glue) == [
        "ns.sub.edge.example. 3600 in a 192.0.2.200",
        "ns.sub.edge.example. 3600 in aaaa 2001:db8::200",
        "ns2.sub.edge.example. 3600 in a 192.0.2.201",
    ]
    assert texts(result.additional) == [
        "ns1.edge.example. 3600 in a 192.0.2.53",
        "ns1.edge.example. 3600 in aaaa 2001:db8::53",
    ]


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [
        ("sub.edge.example.", "NS"),
        ("sub.edge.example.", "A"),
        ("sub.edge.example.", "ANY"),
        ("ns.sub.edge.example.", "A"),
        ("deep.ns.sub.edge.example.", "A"),
        ("host.sub.edge.example.", "DS"),
    ],
)
def test_at_and_below_a_cut_everything_but_ds_is_a_referral(
    zones: ZoneTable, qname: str, qtype: str
) -> None:
    result = ask(zones, qname, qtype)
    assert (result.authoritative, result.answer) == (False, ())
    assert result.authority[0].name == dns.name.from_text("sub.edge.example.")


def test_ds_at_the_cut_is_answered_by_the_parent(zones: ZoneTable) -> None:
    result = ask(zones, "sub.edge.example.", "DS")
    assert (result.authoritative, [rd.key_tag for rd in result.answer[0]]) == (True, [12345])
    assert result.authority == ()


def test_missing_ds_at_the_cut_is_nodata(zones: ZoneTable) -> None:
    result = ask(zones, "sibling.edge.example.", "DS")
    assert (result.authoritative, result.answer, texts(result.authority)) == (
        True,
        (),
        [SOA_NEGATIVE],
    )


def test_glue_under_another_delegation_is_optional(zones: ZoneTable) -> None:
    result = ask(zones, "sibling.edge.example.", "A")
    assert texts(result.glue) == ["ns.sibling.edge.example. 3600 in a 192.0.2.210"]
    assert texts(result.additional) == [
        "ns.sub.edge.example. 3600 in a 192.0.2.200",
        "ns.sub.edge.example. 3600 in aaaa 2001:db8::200",
    ]


def test_missing_glue_is_left_out(zones: ZoneTable) -> None:
    result = ask(zones, "noglue.edge.example.")
    assert (result.glue, result.additional) == ((), ())
    assert len(result.authority[0]) == 2


# --- CNAME ---


def test_cname_chain_is_followed_inside_the_zone(zones: ZoneTable) -> None:
    result = ask(zones, "chain1.edge.example.")
    assert (result.rcode, result.authoritative) == (Rcode.NOERROR, True)
    assert [str(rrset.name) for rrset in result.answer] == [
        "chain1.edge.example.",
        "chain2.edge.example.",
        "chain3.edge.example.",
        "www.edge.example.",
    ]
    assert result.authority == ()


def test_cname_query_returns_the_cname_only(zones: ZoneTable) -> None:
    assert texts(ask(zones, "alias.edge.example.", "CNAME").answer) == [
        "alias.edge.example. 3600 in cname www.edge.example."
    ]


@pytest.mark.parametrize("qtype", ["RRSIG", "NSEC"])
def test_dnssec_types_are_not_chased_through_a_cname(zones: ZoneTable, qtype: str) -> None:
    result = ask(zones, "alias.edge.example.", qtype)
    assert (result.answer, texts(result.authority)) == ((), [SOA_NEGATIVE])


def test_cname_to_nodata_keeps_the_cname_and_adds_the_soa(zones: ZoneTable) -> None:
    result = ask(zones, "alias.edge.example.", "MX")
    assert (result.rcode, len(result.answer), texts(result.authority)) == (
        Rcode.NOERROR,
        1,
        [SOA_NEGATIVE],
    )


def test_dangling_cname_is_nxdomain_for_the_target(zones: ZoneTable) -> None:
    result = ask(zones, "dangling.edge.example.")
    assert (result.rcode, len(result.answer), texts(result.authority)) == (
        Rcode.NXDOMAIN,
        1,
        [SOA_NEGATIVE],
    )


@pytest.mark.parametrize(
    ("qname", "links"), [("loop1.edge.example.", 2), ("self.edge.example.", 1)]
)
def test_cname_loop_stops_without_repeating(zones: ZoneTable, qname: str, links: int) -> None:
    result = ask(zones, qname)
    assert (result.rcode, len(result.answer), result.authority) == (Rcode.NOERROR, links, ())


def test_cname_chain_stops_after_the_limit(zones: ZoneTable) -> None:
    long_chain = ask(zones, "c1.edge.example.")
    assert len(long_chain.answer) == MAX_CHAIN
    assert {rrset.rdtype for rrset in long_chain.answer} == {dns.rdatatype.CNAME}
    assert long_chain.authority == ()
    short_chain = ask(zones, "c3.edge.example.")
    assert texts(short_chain.answer)[-1] == "c8.edge.example. 3600 in a 192.0.2.130"


@pytest.mark.parametrize(
    "qname", ["out.edge.example.", "to-peer.edge.example.", "x.wcout.edge.example."]
)
def test_cname_leaving_the_zone_ends_the_answer(zones: ZoneTable, qname: str) -> None:
    result = ask(zones, qname)
    assert (result.rcode, len(result.answer), result.authority) == (Rcode.NOERROR, 1, ())


@pytest.mark.parametrize(
    ("qname", "cut"),
    [
        ("to-deleg.edge.example.", "sub.edge.example."),
        ("to-child.edge.example.", "child.edge.example."),
    ],
)
def test_cname_into_a_delegation_gives_an_authoritative_referral(
    zones: ZoneTable, qname: str, cut: str
) -> None:
    result = ask(zones, qname)
    assert (result.rcode, result.authoritative, len(result.answer)) == (Rcode.NOERROR, True, 1)
    assert result.authority[0].name == dns.name.from_text(cut)
    assert result.authority[0].rdtype == dns.rdatatype.NS
    assert result.glue


def test_cname_to_apex_gets_additional_for_the_target(zones: ZoneTable) -> None:
    result = ask(zones, "to-apex.edge.example.", "MX")
    assert [rrset.rdtype for rrset in result.answer] == [dns.rdatatype.CNAME, dns.rdatatype.MX]
    assert "mail.edge.example. 3600 in a 192.0.2.25" in texts(result.additional)


# --- DNAME (RFC 6672) ---


def test_dname_synthesizes_a_cname_with_the_dname_ttl(zones: ZoneTable) -> None:
    result = ask(zones, "www.dname.edge.example.")
    assert texts(result.answer) == [
        "dname.edge.example. 1800 in dname target.edge.example.",
        "www.dname.edge.example. 1800 in cname www.target.edge.example.",
        "www.target.edge.example. 3600 in a 192.0.2.8",
    ]


def test_synthesized_cname_is_owned_by_the_query_spelling(zones: ZoneTable) -> None:
    result = ask(zones, "WWW.dname.edge.example.")
    assert result.answer[1].name.labels[0] == b"WWW"


def test_dname_owner_itself_is_not_redirected(zones: ZoneTable) -> None:
    assert ask(zones, "dname.edge.example.").answer == ()
    assert texts(ask(zones, "dname.edge.example.", "DNAME").answer) == [
        "dname.edge.example. 1800 in dname target.edge.example."
    ]


def test_dname_with_cname_query_stops_at_the_synthesized_cname(zones: ZoneTable) -> None:
    result = ask(zones, "www.dname.edge.example.", "CNAME")
    assert [rrset.rdtype for rrset in result.answer] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]
    assert result.authority == ()


def test_dname_to_missing_name_is_nxdomain(zones: ZoneTable) -> None:
    result = ask(zones, "x.y.dname.edge.example.")
    assert (result.rcode, len(result.answer), texts(result.authority)) == (
        Rcode.NXDOMAIN,
        2,
        [SOA_NEGATIVE],
    )


def test_dname_out_of_zone_ends_the_answer(zones: ZoneTable) -> None:
    result = ask(zones, "x.dname-out.edge.example.")
    assert texts(result.answer)[1] == "x.dname-out.edge.example. 3600 in cname x.outside.test."
    assert (result.rcode, result.authority) == (Rcode.NOERROR, ())


@pytest.mark.parametrize(
    ("qname", "records"), [("x.dname-loop.edge.example.", 4), ("x.dname-self.edge.example.", 2)]
)
def test_dname_loop_stops(zones: ZoneTable, qname: str, records: int) -> None:
    result = ask(zones, qname)
    assert (result.rcode, len(result.answer)) == (Rcode.NOERROR, records)


def test_dname_overflow_is_yxdomain_with_the_dname(zones: ZoneTable) -> None:
    qname = "q" * 60 + "." + "r" * 10 + ".long.edge.example."
    result = ask(zones, qname)
    assert (result.rcode, result.authoritative, result.authority) == (Rcode.YXDOMAIN, True, ())
    assert [rrset.rdtype for rrset in result.answer] == [dns.rdatatype.DNAME]


DNAME_ZONES = """
$TTL 300
@ SOA ns hostmaster 1 2 3 4 60
@ NS ns
ns A 192.0.2.1
old DNAME new
x.old A 192.0.2.66
new A 192.0.2.2
x.new A 192.0.2.3
"""


def test_data_below_a_dname_is_occluded() -> None:
    zones = table(zone_from_text(DNAME_ZONES, "d.test."))
    result = ask(zones, "x.old.d.test.")
    assert texts(result.answer) == [
        "old.d.test. 300 in dname new.d.test.",
        "x.new.d.test. 300 in a 192.0.2.3",
        "x.old.d.test. 300 in cname x.new.d.test.",
    ]


def test_dname_at_the_apex_redirects_the_whole_zone() -> None:
    text = "$TTL 300\n@ SOA ns hostmaster 1 2 3 4 60\n@ NS ns.other.test.\n@ DNAME other.test.\n"
    result = ask(table(zone_from_text(text, "apex.test.")), "www.apex.test.")
    assert texts(result.answer)[1] == "www.apex.test. 300 in cname www.other.test."


# --- wildcards (RFC 4592) ---


@pytest.mark.parametrize("qname", ["x.wild.edge.example.", "x.y.wild.edge.example."])
def test_wildcard_answers_with_the_query_name_as_owner(zones: ZoneTable, qname: str) -> None:
    result = ask(zones, qname)
    assert (result.rcode, result.authoritative) == (Rcode.NOERROR, True)
    assert texts(result.answer) == [f"{qname} 3600 in a 192.0.2.100"]


def test_wildcard_without_the_type_is_nodata(zones: ZoneTable) -> None:
    result = ask(zones, "x.wild.edge.example.", "AAAA")
    assert (result.rcode, result.answer, texts(result.authority)) == (
        Rcode.NOERROR,
        (),
        [SOA_NEGATIVE],
    )


def test_wildcard_name_itself_is_ordinary_data(zones: ZoneTable) -> None:
    assert texts(ask(zones, "*.wild.edge.example.").answer) == [
        "*.wild.edge.example. 3600 in a 192.0.2.100"
    ]


@pytest.mark.parametrize("qname", ["a.exists.wild.edge.example.", "x.ent.wild.edge.example."])
def test_wildcard_does_not_apply_below_an_existing_name(zones: ZoneTable, qname: str) -> None:
    assert ask(zones, qname).rcode == Rcode.NXDOMAIN


def test_empty_non_terminal_next_to_a_wildcard_is_nodata(zones: ZoneTable) -> None:
    result = ask(zones, "ent.wild.edge.example.")
    assert (result.rcode, result.answer) == (Rcode.NOERROR, ())


def test_wildcard_under_an_empty_non_terminal(zones: ZoneTable) -> None:
    assert texts(ask(zones, "x.sub2.edge.example.").answer) == [
        "x.sub2.edge.example. 3600 in a 192.0.2.111"
    ]


def test_wildcard_that_is_an_empty_non_terminal_gives_nodata() -> None:
    text = "$TTL 300\n@ SOA ns hostmaster 1 2 3 4 60\n@ NS ns\nns A 192.0.2.1\nx.*.w A 192.0.2.9\n"
    zones = table(zone_from_text(text, "ent.test."))
    result = ask(zones, "anything.w.ent.test.")
    assert (result.rcode, result.answer, len(result.authority)) == (Rcode.NOERROR, (), 1)


def test_wildcard_mx_gets_additional(zones: ZoneTable) -> None:
    result = ask(zones, "x.wild.edge.example.", "MX")
    assert texts(result.additional) == [
        "mail.edge.example. 3600 in a 192.0.2.25",
        "mail.edge.example. 3600 in aaaa 2001:db8::25",
    ]


def test_wildcard_cname_is_synthesized_and_followed(zones: ZoneTable) -> None:
    result = ask(zones, "X.wcname.edge.example.")
    assert texts(result.answer) == [
        "www.edge.example. 3600 in a 192.0.2.80",
        "x.wcname.edge.example. 3600 in cname www.edge.example.",
    ]
    assert result.answer[0].name.labels[0] == b"X"


@pytest.mark.parametrize(
    ("qname", "links"), [("x.wcloop.edge.example.", 1), ("y.wcloop.edge.example.", 2)]
)
def test_wildcard_cname_loop_stops(zones: ZoneTable, qname: str, links: int) -> None:
    result = ask(zones, qname)
    assert (result.rcode, len(result.answer)) == (Rcode.NOERROR, links)


def test_cname_into_a_wildcard(zones: ZoneTable) -> None:
    assert texts(ask(zones, "to-wild.edge.example.").answer) == [
        "host.wild.edge.example. 3600 in a 192.0.2.100",
        "to-wild.edge.example. 3600 in cname host.wild.edge.example.",
    ]


# --- additional section ---


def test_apex_ns_gets_in_zone_addresses(zones: ZoneTable) -> None:
    result = ask(zones, "edge.example.", "NS")
    assert result.glue == ()
    assert texts(result.additional) == [
        "ns1.edge.example. 3600 in a 192.0.2.53",
        "ns1.edge.example. 3600 in aaaa 2001:db8::53",
        "ns2.edge.example. 3600 in a 192.0.2.54",
    ]


@pytest.mark.parametrize(
    ("qname", "qtype", "expected"),
    [
        ("mx-wild.edge.example.", "MX", ["host.wild.edge.example. 3600 in a 192.0.2.100"]),
        (
            "mx-deleg.edge.example.",
            "MX",
            [
                "ns.sub.edge.example. 3600 in a 192.0.2.200",
                "ns.sub.edge.example. 3600 in aaaa 2001:db8::200",
            ],
        ),
        ("mx-cname.edge.example.", "MX", []),
        (
            "_ldap._tcp.edge.example.",
            "SRV",
            [
                "ns1.edge.example. 3600 in a 192.0.2.53",
                "ns1.edge.example. 3600 in aaaa 2001:db8::53",
            ],
        ),
        ("svc-self.edge.example.", "HTTPS", []),
        (
            "svc.edge.example.",
            "HTTPS",
            [
                "svc-target.edge.example. 3600 in a 192.0.2.140",
                "svc-target.edge.example. 3600 in aaaa 2001:db8::140",
                'svc-target.edge.example. 3600 in https 1 . alpn="h2"',
            ],
        ),
        (
            "_dns.svc.edge.example.",
            "SVCB",
            [
                "svc-target.edge.example. 3600 in a 192.0.2.140",
                "svc-target.edge.example. 3600 in aaaa 2001:db8::140",
            ],
        ),
        ("naptr.edge.example.", "NAPTR", []),
    ],
)
def test_additional_targets(zones: ZoneTable, qname: str, qtype: str, expected: list[str]) -> None:
    assert texts(ask(zones, qname, qtype).additional) == expected


def test_additional_stays_in_the_answering_zone(zones: ZoneTable) -> None:
    owners = {str(rrset.name) for rrset in ask(zones, "mx-many.edge.example.", "MX").additional}
    assert owners == {
        "www.edge.example.",
        "mail.edge.example.",
        "ns1.edge.example.",
        "ns2.edge.example.",
    }


# --- ANY (RFC 8482) ---


def test_any_gives_one_rrset_with_the_lowest_type(zones: ZoneTable) -> None:
    result = ask(zones, "edge.example.", "ANY")
    assert [rrset.rdtype for rrset in result.answer] == [dns.rdatatype.A]


def test_full_any_gives_every_rrset_and_their_additional(zones: ZoneTable) -> None:
    result = ask(zones, "edge.example.", "ANY", full_any=True)
    assert sorted(rrset.rdtype for rrset in result.answer) == sorted(
        dns.rdatatype.from_text(t) for t in ("A", "NS", "SOA", "MX", "TXT")
    )
    assert "mail.edge.example. 3600 in a 192.0.2.25" in texts(result.additional)
    assert "ns2.edge.example. 3600 in a 192.0.2.54" in texts(result.additional)


def test_any_at_a_cname_returns_the_cname(zones: ZoneTable) -> None:
    result = ask(zones, "alias.edge.example.", "ANY", full_any=True)
    assert [rrset.rdtype for rrset in result.answer] == [dns.rdatatype.CNAME]


def test_any_at_a_wildcard_is_synthesized(zones: ZoneTable) -> None:
    result = ask(zones, "x.wild.edge.example.", "ANY", full_any=True)
    assert {str(rrset.name) for rrset in result.answer} == {"x.wild.edge.example."}
    assert len(result.answer) == 3
