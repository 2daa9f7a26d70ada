"""Served address records keep their bytes: they must stay indistinguishable from
dnspython's own A and AAAA, whatever text they are built from."""

from __future__ import annotations

import copy
import ipaddress
import pickle
import socket

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from node.zones.served import ServedA, ServedAAAA, address_rdata

IN = dns.rdataclass.IN
OWNER = dns.name.from_text("www.example.")


def _texts(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """The canonical text and forms that only dnspython's parse accepts."""
    texts = [str(address), address.exploded]
    if address.version == 6:
        texts += [socket.inet_ntop(socket.AF_INET6, address.packed), address.exploded.upper()]
    return texts


def _same(served: dns.rdata.Rdata, plain: dns.rdata.Rdata) -> None:
    assert served == plain and plain == served
    assert hash(served) == hash(plain)
    assert served.to_text() == plain.to_text()
    assert served.to_wire() == plain.to_wire()
    assert served.to_digestable() == plain.to_digestable()
    assert (served.rdclass, served.rdtype, served.rdcomment) == (
        plain.rdclass,
        plain.rdtype,
        plain.rdcomment,
    )
    assert len({served, plain}) == 1
    assert len(dns.rrset.from_rdata_list(OWNER, 60, [served, plain])) == 1


@given(st.ip_addresses())
@example(ipaddress.ip_address("::1.2.3.4"))  # embedded IPv4: written as a dotted quad
@example(ipaddress.ip_address("::ffff:0:0"))
@example(ipaddress.ip_address("::ffff:192.0.2.1"))
@example(ipaddress.ip_address("1:0:0:1:0:0:0:1"))  # two equal runs: the first is cut
@example(ipaddress.ip_address("::1:0:0"))
@example(ipaddress.ip_address("1:0:1:1:1:1:1:1"))  # a single 0 is not cut
@settings(max_examples=300)
def test_a_served_address_is_the_same_record_as_dnspythons(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    kind, rdtype = (
        (ServedA, dns.rdatatype.A) if address.version == 4 else (ServedAAAA, dns.rdatatype.AAAA)
    )
    for text in _texts(address):
        try:
            plain = dns.rdata.from_text(IN, rdtype, text)
        except dns.exception.SyntaxError:
            with pytest.raises(dns.exception.SyntaxError):
                kind(IN, rdtype, text)
            continue
        served = kind(IN, rdtype, text)
        _same(served, plain)
        assert served.packed == address.packed
        if text.strip(":"):  # "::" holds nothing but separators: the tokenizer reads it
            assert address_rdata(rdtype, text) == plain


@given(st.ip_addresses(v=4), st.ip_addresses(v=4))
@settings(max_examples=50)
def test_a_served_address_survives_pickle_copy_and_replace(
    first: ipaddress.IPv4Address, second: ipaddress.IPv4Address
) -> None:
    served = ServedA(IN, dns.rdatatype.A, str(first))
    for again in (pickle.loads(pickle.dumps(served)), copy.copy(served), copy.deepcopy(served)):
        _same(again, served)
        assert isinstance(again, ServedA) and again.packed == first.packed
    moved = served.replace(address=str(second))
    assert isinstance(moved, ServedA) and moved.packed == second.packed
    _same(moved, dns.rdata.from_text(IN, dns.rdatatype.A, str(second)))


@pytest.mark.parametrize(
    ("kind", "rdtype", "text"),
    [
        (ServedA, dns.rdatatype.A, "01.2.3.4"),
        (ServedA, dns.rdatatype.A, "256.0.0.1"),
        (ServedA, dns.rdatatype.A, "1.2.3"),
        (ServedA, dns.rdatatype.A, "1.2.3.4\x00"),
        (ServedA, dns.rdatatype.A, "::1"),
        (ServedAAAA, dns.rdatatype.AAAA, "1::2::3"),
        (ServedAAAA, dns.rdatatype.AAAA, "::g"),
        (ServedAAAA, dns.rdatatype.AAAA, "192.0.2.1"),
    ],
)
def test_a_bad_address_fails_as_dnspython_fails(
    kind: type[ServedA] | type[ServedAAAA], rdtype: dns.rdatatype.RdataType, text: str
) -> None:
    with pytest.raises(dns.exception.SyntaxError) as expected:
        dns.rdata.from_text(IN, rdtype, text)
    with pytest.raises(dns.exception.SyntaxError) as raised:
        kind(IN, rdtype, text)
    assert str(raised.value) == str(expected.value)


def test_served_addresses_render_in_responses_as_plain_ones() -> None:
    texts = ["192.0.2.1", "198.51.100.7"]
    served = dns.rrset.from_rdata_list(OWNER, 60, [ServedA(IN, dns.rdatatype.A, t) for t in texts])
    plain = dns.rrset.from_text_list(OWNER, 60, IN, dns.rdatatype.A, texts)
    assert served == plain
    query = dns.message.make_query(OWNER, "A")
    wires = []
    for rrset in (served, plain):
        response = dns.message.make_response(query)
        response.answer = [rrset]
        wires.append(response.to_wire(want_shuffle=False))
    assert wires[0] == wires[1]
