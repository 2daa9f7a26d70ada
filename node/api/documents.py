"""JSON documents the API returns, and the ETags derived from them.

An ETag is a hash of the representation's content in canonical form, so two converged
nodes return equal ETags for the same resource, and a client can send If-Match to any node.
"""

from __future__ import annotations

import hashlib
from typing import Any

import dns.rdatatype
import dns.rrset

from node.zones.index import Zone
from protocol.canonical import canonical_json

Doc = dict[str, Any]


def etag_of_bytes(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def etag_of_doc(doc: Doc) -> str:
    return etag_of_bytes(canonical_json(doc))


def rrset_doc(rrset: dns.rrset.RRset) -> Doc:
    return {
        "name": rrset.name.to_text(),
        "type": dns.rdatatype.to_text(rrset.rdtype),
        "ttl": rrset.ttl,
        "records": sorted(rd.to_text() for rd in rrset),
    }


def soa_doc(zone: Zone) -> Doc:
    soa = zone.get(zone.origin, dns.rdatatype.SOA)
    assert soa is not None
    rd = soa[0]
    return {
        "mname": rd.mname.to_text(),
        "rname": rd.rname.to_text(),
        "serial": rd.serial,
        "refresh": rd.refresh,
        "retry": rd.retry,
        "expire": rd.expire,
        "minimum": rd.minimum,
        "ttl": soa.ttl,
    }


def zone_doc(zone: Zone, detail: bool = True) -> Doc:
    soa = soa_doc(zone)
    doc: Doc = {
        "name": zone.origin.to_text(),
        "serial": soa["serial"],
        "rrsets": zone.rrset_count(),
        "records": zone.record_count(),
    }
    if detail:
        doc["soa"] = soa
    return doc


def zones_doc(zones: list[Zone]) -> Doc:
    return {"zones": [zone_doc(z, detail=False) for z in sorted(zones, key=lambda z: z.origin)]}


def token_doc(token_id: str, value: Any) -> Doc:
    """Never the secret: only what the token is and may do."""
    if value.get("revoked"):
        return {"id": token_id, "revoked": True}
    return {
        "id": token_id,
        "name": value["name"],
        "role": value["role"],
        "zones": value["zones"],
        "revoked": False,
    }
