"""Plain-text views of API bodies for a terminal: aligned tables and short summaries.

The bodies come from a node that may be newer or older than this command, so every field
is looked up through ``field``/``items``: a missing or mistyped field is reported as an
``UnexpectedResponse`` naming it, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ID_SHORT = 12
ROOT_SHORT = 16
NONE = "-"


class UnexpectedResponse(ValueError):
    """An API body without a field this command needs."""


def field(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise UnexpectedResponse(f"the node's response has no field {key!r}")
    return obj[key]


def items(obj: Any, key: str) -> list[Any]:
    value = field(obj, key)
    if not isinstance(value, list):
        raise UnexpectedResponse(f"the node's response field {key!r} is not a list")
    return value


def cell(value: Any) -> str:
    return NONE if value is None else str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = (
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in table
    )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_zones(body: Any) -> str:
    rows = (
        [cell(field(zone, key)) for key in ("name", "serial", "rrsets", "records")]
        for zone in items(body, "zones")
    )
    return format_table(["ZONE", "SERIAL", "RRSETS", "RECORDS"], rows)


def render_zone(zone: Any) -> str:
    soa = field(zone, "soa")
    soa_text = " ".join(
        cell(field(soa, key)) for key in ("mname", "rname", "refresh", "retry", "expire", "minimum")
    )
    rows = [
        ["zone", cell(field(zone, "name"))],
        ["serial", cell(field(zone, "serial"))],
        ["rrsets", cell(field(zone, "rrsets"))],
        ["records", cell(field(zone, "records"))],
        ["soa", f"{soa_text} (ttl {cell(field(soa, 'ttl'))})"],
    ]
    return format_table(["FIELD", "VALUE"], rows)


def rrset_rows(rrset: Any) -> list[list[str]]:
    """One row per record, as in a zone file, so that long RRsets stay readable."""
    head = [cell(field(rrset, key)) for key in ("name", "type", "ttl")]
    return [[*head, cell(record)] for record in items(rrset, "records")]


def render_rrsets(rrsets: Iterable[Any]) -> str:
    rows = [row for rrset in rrsets for row in rrset_rows(rrset)]
    return format_table(["NAME", "TYPE", "TTL", "RDATA"], rows)


def render_invites(body: Any) -> str:
    rows = (
        [
            cell(field(invite, "jti")),
            short_id(field(invite, "issuer")),
            cell(field(invite, "expires")),
            cell(field(invite, "status")),
            short_id(invite.get("used_by")) if invite.get("used_by") else NONE,
        ]
        for invite in items(body, "invites")
    )
    return format_table(["JTI", "ISSUER", "EXPIRES", "STATUS", "USED BY"], rows)


def render_tokens(body: Any) -> str:
    rows = (
        [
            cell(field(token, "id")),
            cell(token.get("name")),
            cell(token.get("role")),
            "revoked" if field(token, "revoked") else ", ".join(token.get("zones") or ["all"]),
        ]
        for token in items(body, "tokens")
    )
    return format_table(["ID", "NAME", "ROLE", "ZONES"], rows)


def render_members(body: Any) -> str:
    rows = (
        [
            cell(field(member, "id")),
            cell(member.get("name")),
            cell(member.get("peer")),
            cell(field(member, "membership")),
            NONE if member.get("cut") is None else cell(member["cut"]),
        ]
        for member in items(body, "members")
    )
    return format_table(["ID", "NAME", "PEER", "MEMBERSHIP", "CUT"], rows)


def render_import(body: Any) -> str:
    zone = field(body, "zone")
    imported = field(body, "imported")
    return (
        f"imported {cell(field(imported, 'records'))} records in "
        f"{cell(field(imported, 'rrsets'))} rrsets into {cell(field(zone, 'name'))} "
        f"(serial {cell(field(zone, 'serial'))})\n"
    )


def short_id(value: Any) -> str:
    return cell(value)[:ID_SHORT]


def format_lag(lag: Any) -> str:
    if lag is None:
        return NONE
    seconds = field(lag, "seconds")
    seconds_text = f"{seconds:.1f}s" if isinstance(seconds, int | float) else cell(seconds)
    return f"{cell(field(lag, 'events'))} events, {seconds_text}"


def count_of(value: Any) -> str:
    """A list counts its items; an object of counters (conflicts) adds them up."""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return str(sum(v for v in value.values() if isinstance(v, int)))
    return cell(value)


def render_status(body: Any) -> str:
    cluster = field(body, "cluster")
    node = field(body, "node")
    header = (
        f"cluster {cell(field(cluster, 'name'))} ({short_id(field(cluster, 'id'))})  "
        f"node {cell(field(node, 'name'))} ({short_id(field(node, 'id'))})  "
        f"merkle {cell(field(body, 'merkle_root'))[:ROOT_SHORT]}  "
        f"conflicts {count_of(field(body, 'conflicts'))}  "
        f"invites {count_of(field(body, 'invites'))}\n"
    )
    for key, what in (("rejected_events", "events"), ("refused_links", "links")):
        counts = body.get(key) or {}
        if isinstance(counts, dict) and counts:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
            header += f"{what} refused from peers: {reasons}\n"
    rows = (
        [
            cell(field(member, "name")),
            short_id(field(member, "id")),
            cell(field(member, "peer")),
            cell(field(member, "state")),
            cell(field(member, "membership")),
            cell(field(member, "last_seen")),
            format_lag(field(member, "lag")),
        ]
        for member in items(body, "members")
    )
    table = format_table(["NAME", "ID", "PEER", "STATE", "MEMBERSHIP", "LAST SEEN", "LAG"], rows)
    return f"{header}\n{table}"


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def upload_progress(name: str, sent: int, total: int) -> str:
    percent = 100 if total == 0 else sent * 100 // total
    return f"uploading {name}: {format_bytes(sent)} of {format_bytes(total)} ({percent}%)"
