"""The edge-case zones under tests/data, loaded into the index the answer engine reads."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rrset
import dns.zone

from node.zones.index import Zone, ZoneTable

DATA = Path(__file__).parent / "data"
ZONE_FILES = {
    "edge.example.": DATA / "edge.example.zone",
    "child.edge.example.": DATA / "child.edge.example.zone",
    "peer.example.": DATA / "peer.example.zone",
}


def zone_from_text(text: str, origin: str) -> Zone:
    parsed = dns.zone.from_text(text, origin, relativize=False)
    zone = Zone(dns.name.from_text(origin))
    for name, rdataset in parsed.iterate_rdatasets():
        zone.put(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))
    return zone


def edge_zones() -> ZoneTable:
    table = ZoneTable()
    for origin, path in ZONE_FILES.items():
        table.add(zone_from_text(path.read_text(), origin))
    return table
