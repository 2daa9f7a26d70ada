"""CHAOS-class server identification: id.server, hostname.bind, version.bind, version.server.

These names are a convention (RFC 4892 for id.server), not zone data. Like Knot, the
answer is a TXT record with TTL 0 and no AA bit, owned by the query name as the client
spelled it; a name whose value is hidden, any other name and any other type are REFUSED.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from node.dns.answer import REFUSED, Answer

_MAX_STRING = 255
_ID_SERVER = dns.name.from_text("id.server.")
_HOSTNAME_BIND = dns.name.from_text("hostname.bind.")
_VERSIONS = (dns.name.from_text("version.bind."), dns.name.from_text("version.server."))


@dataclass(frozen=True)
class ServerIdentity:
    """What the CHAOS names reveal; None hides a name (the query is REFUSED)."""

    id_server: str | None = None
    hostname_bind: str | None = None
    version_bind: str | None = None


def chaos_answer(
    identity: ServerIdentity, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> Answer:
    if qtype != dns.rdatatype.TXT:
        return REFUSED
    text = _value(identity, qname)
    if text is None:
        return REFUSED
    raw = text.encode()
    strings = [raw[i : i + _MAX_STRING] for i in range(0, len(raw), _MAX_STRING)] or [b""]
    rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, dns.rdatatype.TXT, strings)
    return Answer(
        dns.rcode.Rcode.NOERROR,
        authoritative=False,
        answer=(dns.rrset.from_rdata(qname, 0, rdata),),
    )


def _value(identity: ServerIdentity, qname: dns.name.Name) -> str | None:
    if qname == _ID_SERVER:
        return identity.id_server
    if qname == _HOSTNAME_BIND:
        return identity.hostname_bind
    if qname in _VERSIONS:
        return identity.version_bind
    return None
