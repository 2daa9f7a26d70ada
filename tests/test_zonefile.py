"""Zone file import and export: node/zones/zonefile.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.zones.index import Zone
from node.zones.zonefile import (
    ZoneFileError,
    _ZoneTokenizer,
    export_zone_text,
    parse_zone_text,
)

ORIGIN = dns.name.from_text("example.com.")
ALL_TYPES = Path(__file__).parent / "data" / "zonefiles" / "all-types.zone"
HEAD = "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
HEAD_LINES = HEAD.count("\n")

RecordKey = tuple[str, int, int, int, tuple[bytes, ...]]


def contents(rrsets: list[dns.rrset.RRset]) -> list[RecordKey]:
    """RRsets as comparable values: dnspython's RRset equality ignores TTLs."""
    return sorted(
        (
            rrset.name.to_text().lower(),
            rrset.rdtype,
            rrset.covers,
            rrset.ttl,
            tuple(sorted(rdata.to_digestable(ORIGIN) for rdata in rrset)),
        )
        for rrset in rrsets
    )


def parse_tail(tail: str, **kwargs: int) -> list[dns.rrset.RRset]:
    """Parse a valid zone head followed by ``tail``, whose first line is HEAD_LINES + 1."""
    return parse_zone_text(HEAD + tail, ORIGIN, **kwargs)


def find(rrsets: list[dns.rrset.RRset], name: str, rdtype: str) -> dns.rrset.RRset:
    owner = dns.name.from_text(name, ORIGIN)
    wanted = dns.rdatatype.from_text(rdtype)
    (match,) = [r for r in rrsets if r.name == owner and r.rdtype == wanted]
    return match


def as_zone(rrsets: list[dns.rrset.RRset]) -> Zone:
    zone = Zone(ORIGIN)
    for rrset in rrsets:
        zone.put(rrset)
    return zone


def named_checkzone(tmp_path: Path, text: str) -> str:
    """BIND's reading of ``text``, dumped in its canonical form; fails if BIND refuses it."""
    binary = shutil.which("named-checkzone")
    assert binary is not None, "named-checkzone (bind9-utils) is required for this test"
    path = tmp_path / "exported.zone"
    path.write_text(text)
    # -i local: integrity checks only for in-zone names, so BIND never resolves names.
    result = subprocess.run(
        [binary, "-i", "local", "-D", "-o", "-", ORIGIN.to_text(), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- reading ---------------------------------------------------------------------------


def test_all_types_fixture_parses_to_absolute_canonical_rrsets() -> None:
    rrsets = parse_zone_text(ALL_TYPES.read_text(), ORIGIN)

    assert all(r.name.is_absolute() and r.name.is_subdomain(ORIGIN) for r in rrsets)
    assert rrsets[0].rdtype == dns.rdatatype.SOA
    assert find(rrsets, "mixed", "A").name.to_text() == "mixed.example.com."
    assert len(find(rrsets, "@", "NS")) == 2
    assert len(find(rrsets, "multi", "TXT")) == 2
    assert find(rrsets, "mail", "A").ttl == 300
    assert find(rrsets, "ns1", "A").ttl == 3600
    assert find(rrsets, "deep.sub", "A").ttl == 3600
    assert find(rrsets, "short.sub", "A").ttl == 60
    assert find(rrsets, "ttl-zero.sub", "A").ttl == 0
    assert find(rrsets, "ttl-units.sub", "A").ttl == 5400
    assert find(rrsets, "www", "CNAME")[0].to_text() == "example.com."
    assert find(rrsets, "escaped\\.dot", "A").name.labels[0] == b"escaped.dot"
    (unknown,) = find(rrsets, "unknown", "TYPE65280")
    assert isinstance(unknown, dns.rdata.GenericRdata)
    assert unknown.data == bytes.fromhex("0a000001")
    assert find(rrsets, "generic-a", "A")[0].to_text() == "192.0.2.9"
    assert find(rrsets, "generic-mx", "MX")[0].to_text() == "10 mx."
    for rdtype in ("SRV", "CAA", "NAPTR", "SSHFP", "TLSA", "SVCB", "LOC", "URI"):
        assert any(r.rdtype == dns.rdatatype.from_text(rdtype) for r in rrsets), rdtype
    assert find(rrsets, "child", "DS")[0].key_tag == 60485
    assert find(rrsets, "@", "HTTPS")[0].priority == 1


def test_long_txt_string_is_split_into_255_octet_strings() -> None:
    quoted = "x" * 600
    escaped = "\\065" * 300
    utf8 = "é" * 200  # 400 octets: the split falls inside a character
    rrsets = parse_tail(
        f'a TXT "{quoted}"\nb TXT "{escaped}" "short"\nc TXT "{utf8}"\n'
        f'd TXT {"y" * 256}\ne TXT "{"z" * 255}"\n'
    )

    assert find(rrsets, "a", "TXT")[0].strings == (b"x" * 255, b"x" * 255, b"x" * 90)
    assert find(rrsets, "b", "TXT")[0].strings == (b"A" * 255, b"A" * 45, b"short")
    pieces = find(rrsets, "c", "TXT")[0].strings
    assert [len(p) for p in pieces] == [255, 145]
    assert b"".join(pieces) == utf8.encode()
    assert find(rrsets, "d", "TXT")[0].strings == (b"y" * 255, b"y")
    assert find(rrsets, "e", "TXT")[0].strings == (b"z" * 255,)


def test_long_caa_value_is_not_split() -> None:
    value = "v" * 300
    (caa,) = find(parse_tail(f'@ CAA 0 issue "{value}"\n'), "@", "CAA")
    assert caa.value == value.encode()


def test_generate_expands_ranges_and_modifiers() -> None:
    rrsets = parse_tail(
        "$GENERATE 1-3 host-$ A 192.0.2.$\n"
        "$GENERATE 0-4/2 ${10,3} 300 CNAME host-${1}\n"
        "$GENERATE 10-11 $.rev PTR h$.example.net.\n"
    )

    assert [find(rrsets, f"host-{i}", "A")[0].to_text() for i in (1, 2, 3)] == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ]
    for i in (0, 2, 4):
        cname = find(rrsets, f"{10 + i:03d}", "CNAME")
        assert cname.ttl == 300
        assert cname[0].target == dns.name.from_text(f"host-{i + 1}", ORIGIN)
    assert find(rrsets, "11.rev", "PTR")[0].to_text() == "h11.example.net."


def test_origin_directive_changes_relative_names() -> None:
    rrsets = parse_tail("$ORIGIN sub\na A 192.0.2.1\n$ORIGIN example.com.\nb MX 1 a.sub\n")

    assert find(rrsets, "a.sub", "A")
    assert find(rrsets, "b", "MX")[0].exchange == dns.name.from_text("a.sub.example.com.")


def test_differing_ttls_in_one_rrset_take_the_lowest() -> None:
    rrsets = parse_tail("a 600 A 192.0.2.1\na 60 A 192.0.2.2\na 300 A 192.0.2.3\n")
    assert find(rrsets, "a", "A").ttl == 60


def test_owner_case_folds_into_one_rrset() -> None:
    rrsets = parse_tail("WWW A 192.0.2.1\nwww A 192.0.2.2\n")
    www = find(rrsets, "www", "A")
    assert len(www) == 2
    assert www.name.labels[0] == b"www"


def test_crlf_line_ends_keep_line_numbers() -> None:
    text = (HEAD + "a A 192.0.2.1\nb A 192.0.2.999\n").replace("\n", "\r\n")
    with pytest.raises(ZoneFileError) as raised:
        parse_zone_text(text, ORIGIN)
    assert raised.value.line == HEAD_LINES + 2


# --- errors ----------------------------------------------------------------------------

BAD_INPUT = [
    # (tail after HEAD, line relative to the tail's first line, text in the reason)
    pytest.param("www A 192.0.2.999\n", 1, "192.0.2.999", id="bad-rdata"),
    pytest.param("a A 192.0.2.1\nwww A 192.0.2.1 extra\n", 2, "extra", id="trailing-word"),
    pytest.param("www A\n", 1, "expecting an identifier", id="missing-rdata"),
    pytest.param("www A ; no address\n", 1, "expecting an identifier", id="missing-rdata-2"),
    pytest.param("www FOO 1\n", 1, "unknown rdatatype 'FOO'", id="unknown-type"),
    pytest.param("www 9999999999999 A 192.0.2.1\n", 1, "neither a TTL", id="ttl-too-big"),
    pytest.param("www -5 A 192.0.2.1\n", 1, "'-5'", id="negative-ttl"),
    pytest.param("www 3000000000 A 192.0.2.1\n", 1, "TTL 3000000000", id="ttl-over-2^31"),
    pytest.param("$TTL soon\n", 1, "near 'soon'", id="bad-default-ttl"),
    pytest.param("www CH A 192.0.2.1\n", 1, "class", id="other-class"),
    pytest.param("\n\n)\n", 3, "malformed", id="garbage"),
    pytest.param('www TXT "open\n', 1, "newline in quoted string", id="open-quote"),
    pytest.param("www MX ( 10\n\n  bad..name )\n", 3, "label is empty", id="multi-line"),
    pytest.param(f"{'a' * 64} A 192.0.2.1\n", 1, "label", id="label-too-long"),
    pytest.param(f"{'a.' * 130}x A 192.0.2.1\n", 1, "255", id="name-too-long"),
    pytest.param("www.example.org. A 192.0.2.1\n", 1, "outside the zone", id="out-of-zone"),
    pytest.param("$ORIGIN example.org.\nwww A 192.0.2.1\n", 2, "outside", id="origin-elsewhere"),
    pytest.param("$GENERATE 1-3 h$.example.org. A 192.0.2.$\n", 1, "outside", id="generate-out"),
    pytest.param("$INCLUDE /etc/passwd\n", 1, "'$INCLUDE' is not allowed", id="include"),
    pytest.param("$UNICODE 2008\n", 1, "'$UNICODE' is not allowed", id="unicode"),
    pytest.param("$FOO bar\n", 1, "'$FOO' is not allowed", id="unknown-directive"),
    pytest.param("sub SOA ns1 h 1 2 3 4 5\n", 1, "only at the zone apex", id="soa-not-apex"),
    pytest.param("sub SOA ( ns1 h\n 1 2 3 4 5 )\n", 1, "only at the zone apex", id="soa-2-lines"),
    pytest.param("@ SOA ns1 other 2 2 3 4 5\n", 1, "only one SOA", id="second-soa"),
    pytest.param("a A 192.0.2.1\nw CNAME a\nw CNAME b\n", 3, "only one CNAME", id="2-cnames"),
    pytest.param("x DNAME a.\nx DNAME b.\n", 2, "only one DNAME", id="two-dnames"),
    pytest.param("a A 192.0.2.1\nw CNAME a\nw A 192.0.2.1\n", 2, "CNAME and other", id="cname"),
    pytest.param("x DNAME t.example.net.\nb.x A 192.0.2.1\n", 2, "below the DNAME", id="dname"),
    pytest.param("a TYPE255 \\# 0\n", 1, "not a type of data", id="meta-type"),
    pytest.param(
        "a RRSIG A 13 2 60 20300101000000 20200101000000 1 example.com. AAAA\n"
        "a RRSIG NS 13 2 60 20300101000000 20200101000000 1 example.com. AAAA\n",
        2,
        "RRSIGs covering A",
        id="rrsig-covers",
    ),
]


@pytest.mark.parametrize(("tail", "line", "reason"), BAD_INPUT)
def test_first_error_names_its_line_and_reason(tail: str, line: int, reason: str) -> None:
    with pytest.raises(ZoneFileError) as raised:
        parse_tail(tail + "after A 192.0.2.1\nlater FOO 1\n")
    assert raised.value.line == HEAD_LINES + line
    assert reason in raised.value.reason
    assert str(raised.value) == f"line {HEAD_LINES + line}: {raised.value.reason}"


def test_include_refusal_names_the_line() -> None:
    text = "\n".join(
        [
            "$TTL 60",
            "@ SOA ns1 h 1 2 3 4 5",
            "@ NS ns1",
            "",
            "; comment",
            "ns1 A 192.0.2.1",
            "$INCLUDE other.zone",
        ]
    )
    with pytest.raises(ZoneFileError, match=r"^line 7: .*\$INCLUDE.* not allowed"):
        parse_zone_text(text, ORIGIN)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("$TTL 60\n@ NS ns1\nns1 A 192.0.2.1\n", "needs an SOA", id="no-soa"),
        pytest.param("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n", "needs an NS", id="no-ns"),
        pytest.param("$TTL 60\nsub NS ns1\n@ SOA ns1 h 1 2 3 4 5\n", "needs an NS", id="ns-low"),
        pytest.param("", "needs an SOA", id="empty"),
    ],
)
def test_apex_errors_have_no_line(text: str, reason: str) -> None:
    with pytest.raises(ZoneFileError) as raised:
        parse_zone_text(text, ORIGIN)
    assert raised.value.line is None
    assert reason in raised.value.reason
    assert str(raised.value) == raised.value.reason


def test_parenthesis_left_open_at_the_end() -> None:
    with pytest.raises(ZoneFileError) as raised:
        parse_tail("www MX ( 10 mail\n")
    assert raised.value.line == HEAD_LINES + 1
    assert "unbalanced parentheses" in raised.value.reason


def test_missing_default_ttl_is_an_error() -> None:
    with pytest.raises(ZoneFileError) as raised:
        parse_zone_text("www A 192.0.2.1\n@ SOA ns1 h 1 2 3 4 5\n", ORIGIN)
    assert raised.value.line == 1
    assert "TTL" in raised.value.reason


def test_record_limit_stops_a_runaway_generate() -> None:
    with pytest.raises(ZoneFileError) as raised:
        parse_tail("$GENERATE 1-4000000000 h$ A 192.0.2.1\n", max_records=50)
    assert raised.value.line == HEAD_LINES + 1
    assert "more than 50 records" in raised.value.reason


# Words and separators that exercise the reader's states.
# fmt: off
ZONE_WORDS = [
    "www", "@", "A", "TXT", "MX", "10", "IN", "CH", "(", ")", ";", '"', "\\", "\\#", "4",
    "0a000001", "192.0.2.1", "$TTL", "$ORIGIN", "$GENERATE", "1-3", "$", "CNAME", "DNAME",
    "SOA", "NS", "x.y.", "..", "é", "TYPE65280", "ANY", "1h", "-1",
    "\t", " ", "\n", "\r\n", "\r",
]
# fmt: on
TOKENIZER_PIECES = [*'a1 \t\n\r"();\\$.é\x0b\xa0', "\r\n", "\\065"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ZONE_WORDS), max_size=12))
def test_any_input_parses_or_raises_zone_file_error(words: list[str]) -> None:
    text = HEAD + " ".join(words) + "\n"
    try:
        rrsets = parse_zone_text(text, ORIGIN, max_records=100)
    except ZoneFileError as e:
        # dnspython ends a line at a lone CR too.
        assert e.line is None or 1 <= e.line <= text.count("\n") + text.count("\r") + 1
    else:
        assert all(r.name.is_subdomain(ORIGIN) for r in rrsets)


# --- the tokenizer ---------------------------------------------------------------------


def _tokens(tokenizer: dns.tokenizer.Tokenizer, flags: list[tuple[bool, bool]]) -> list[object]:
    out: list[object] = []
    for want_leading, want_comment in flags:
        try:
            token = tokenizer.get(want_leading, want_comment)
        except dns.exception.DNSException as e:
            out.append(type(e))
            break
        out.append((token.ttype, token.value, token.has_escape, token.comment))
        if token.is_eof():
            break
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(TOKENIZER_PIECES), max_size=40).map("".join),
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=60, max_size=60),
)
def test_fast_path_yields_dnspythons_tokens(text: str, flags: list[tuple[bool, bool]]) -> None:
    assert _tokens(_ZoneTokenizer(text), flags) == _tokens(dns.tokenizer.Tokenizer(text), flags)


# --- writing ---------------------------------------------------------------------------


def test_round_trip_keeps_every_rrset_and_ttl() -> None:
    parsed = parse_zone_text(ALL_TYPES.read_text(), ORIGIN)
    exported = export_zone_text(as_zone(parsed))

    assert contents(parse_zone_text(exported, ORIGIN)) == contents(parsed)
    assert export_zone_text(as_zone(parse_zone_text(exported, ORIGIN))) == exported


def test_export_layout() -> None:
    exported = export_zone_text(as_zone(parse_zone_text(ALL_TYPES.read_text(), ORIGIN)))
    lines = [line.rstrip() for line in exported.splitlines()]  # dnspython ends "\# 0 " so

    assert lines[0] == "$ORIGIN example.com."
    assert lines[1] == "@ 3600 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300"
    assert "unknown 3600 IN TYPE65280 \\# 4 0a000001" in lines
    assert "unknown-empty 3600 IN TYPE65281 \\# 0" in lines
    assert "generic-a 3600 IN A 192.0.2.9" in lines
    assert "ttl-zero.sub 0 IN A 192.0.2.16" in lines


def test_named_checkzone_accepts_the_export_and_reads_the_same_data(tmp_path: Path) -> None:
    parsed = parse_zone_text(ALL_TYPES.read_text(), ORIGIN)
    bind_dump = named_checkzone(tmp_path, export_zone_text(as_zone(parsed)))

    assert contents(parse_zone_text(bind_dump, ORIGIN)) == contents(parsed)


def test_named_checkzone_accepts_a_generated_zone(tmp_path: Path) -> None:
    parsed = parse_tail(
        "$GENERATE 1-200 h$ A 192.0.2.${0,1,d}\n$GENERATE 1-50 ${0,3,x} 60 TXT n$\n"
    )
    bind_dump = named_checkzone(tmp_path, export_zone_text(as_zone(parsed)))
    assert contents(parse_zone_text(bind_dump, ORIGIN)) == contents(parsed)


# --- size ------------------------------------------------------------------------------
