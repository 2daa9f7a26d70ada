"""The OpenAPI 3.1 document served at /api/v1/openapi.json.

It is written by hand next to the routes; tests/test_openapi.py checks that it names exactly
the routes and methods the application serves, and validates real responses against it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from node import __version__
from protocol.tokens import ROLES

Doc = dict[str, Any]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Doc) -> Doc:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: Doc | None = None, status: str = "200") -> Doc:
    response: Doc = {"description": description}
    if schema is not None:
        response["content"] = _json(schema)
    return {status: response}


def _listing(description: str, field: str, item: str) -> Doc:
    """A 200 whose body is ``{field: [item, ...]}``."""
    return _ok(
        description,
        {"type": "object", "properties": {field: {"type": "array", "items": _ref(item)}}},
    )


def _errors(*statuses: str) -> Doc:
    text = {
        "400": "Invalid request; the error names the field (and line, for zone files)",
        "401": "Missing or invalid bearer token",
        "403": "The token's role does not allow this",
        "404": "No such zone, RRset, token, invite or member",
        "409": "Conflicts with the current state (not_a_member: this node is no member now)",
        "412": "If-Match does not match the current ETag",
        "413": "The body is over 64 MiB",
        "415": "Wrong Content-Type",
        "503": "Writes are held until this node has its own earlier changes back",
    }
    return {s: {"description": text[s], "content": _json(_ref("Error"))} for s in statuses}


def _op(
    summary: str,
    responses: Doc,
    *,
    body: Doc | None = None,
    body_required: bool = True,
    public: bool = False,
) -> Doc:
    op: Doc = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": body}
    if public:
        op["security"] = []
    return op


def _path_param(name: str) -> Doc:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_ZONE_PARAM = _path_param("zone")
_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "Owner name: relative to the zone, '@' for the apex, or absolute with a dot",
    "schema": {"type": "string"},
}
_TYPE_PARAM = _path_param("type")
_TOKEN_PARAM = _path_param("token_id")
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
_FORCED = {"parameters": [{"name": "force", "in": "query", "schema": {"type": "boolean"}}]}
_WAIT_PARAMS = [
    {
        "name": "wait",
        "in": "query",
        "description": "Answer once this many nodes (this one included) applied the write",
        "schema": {"type": "integer", "minimum": 1},
    },
    {
        "name": "timeout",
        "in": "query",
        "description": "Seconds to wait (default 10, at most 300); needs wait",
        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
    },
]
_WRITES = ("post", "put", "patch", "delete")


def _add_write_common(paths: Doc) -> None:
    """What every write shares: If-Match, ?wait=N (a write that answers 204 answers 200
    with the counts), a body size limit, and the refusals of a node that takes no writes."""
    for item in paths.values():
        for method in _WRITES:
            op = item.get(method)
            if op is None:
                continue
            op["parameters"] = [_IF_MATCH, *op.get("parameters", []), *_WAIT_PARAMS]
            # 400: a bad wait or timeout; 409: not_a_member; 503: writes_held.
            op["responses"] = _errors("400") | op["responses"] | _errors("409", "412", "413", "503")
            if "204" in op["responses"]:
                op["responses"] |= _ok(
                    "Done, with ?wait: how many nodes applied it", _ref("Applied")
                )


_STRINGS = {"type": "array", "items": {"type": "string"}}
_NULLABLE_TIME = {"oneOf": [{"type": "string"}, {"type": "null"}]}
_NULLABLE_INT = {"oneOf": [{"type": "integer"}, {"type": "null"}]}
_SCHEMAS: Doc = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "line": {"type": "integer"},
                },
            }
        },
    },
    "Soa": {
        "type": "object",
        "properties": {
            k: {"type": "integer"}
            for k in ("serial", "refresh", "retry", "expire", "minimum", "ttl")
        }
        | {"mname": {"type": "string"}, "rname": {"type": "string"}},
    },
    "ZoneSummary": {
        "type": "object",
        "required": ["name", "serial", "rrsets", "records"],
        "properties": {
            "name": {"type": "string"},
            "serial": {"type": "integer"},
            "rrsets": {"type": "integer"},
            "records": {"type": "integer"},
        },
    },
    "Zone": {
        "allOf": [_ref("ZoneSummary"), {"type": "object", "properties": {"soa": _ref("Soa")}}]
    },
    "ZoneCreate": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "ns": _STRINGS,
            "ttl": {"type": "integer", "minimum": 0, "maximum": 2147483647},
        },
    },
    "ImportResult": {
        "type": "object",
        "properties": {
            "zone": _ref("Zone"),
            "imported": {
                "type": "object",
                "properties": {"rrsets": {"type": "integer"}, "records": {"type": "integer"}},
            },
            "events": {"type": "integer"},
        },
    },
    "RRset": {
        "type": "object",
        "required": ["name", "type", "ttl", "records"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string"},
            "ttl": {"type": "integer"},
            "records": _STRINGS,
        },
    },
    "RRsetPut": {
        "type": "object",
        "required": ["ttl", "records"],
        "additionalProperties": False,
        "properties": {
            "ttl": {"type": "integer", "minimum": 0, "maximum": 2147483647},
            "records": _STRINGS,
        },
    },
    "Change": {
        "oneOf": [
            {
                "type": "object",
                "required": ["op", "name", "type", "ttl", "records"],
                "additionalProperties": False,
                "properties": {
                    "op": {"const": "put"},
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "ttl": {"type": "integer"},
                    "records": _STRINGS,
                },
            },
            {
                "type": "object",
                "required": ["op", "name", "type"],
                "additionalProperties": False,
                "properties": {
                    "op": {"const": "delete"},
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        ]
    },
    "Batch": {
        "type": "object",
        "required": ["changes"],
        "additionalProperties": False,
        "properties": {"changes": {"type": "array", "items": _ref("Change"), "minItems": 1}},
    },
    "BatchResult": {
        "type": "object",
        "properties": {"zone": _ref("Zone"), "changes": {"type": "integer"}},
    },
    "Token": {
        "type": "object",
        "required": ["id", "revoked"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": list(ROLES)},
            "zones": {"oneOf": [_STRINGS, {"type": "null"}]},
            "revoked": {"type": "boolean"},
        },
    },
    "TokenCreate": {
        "type": "object",
        "required": ["name", "role"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": list(ROLES)},
            "zones": {"oneOf": [_STRINGS, {"type": "null"}]},
        },
    },
    "TokenCreated": {
        "allOf": [
            _ref("Token"),
            {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
        ]
    },
    "Invite": {
        "type": "object",
        "required": ["jti", "issuer", "expires", "status", "used_by"],
        "properties": {
            "jti": {"type": "string"},
            "issuer": {"type": "string"},
            "expires": {"type": "string"},
            "status": {"enum": ["open", "expired", "used", "revoked"]},
            "used_by": {"oneOf": [{"type": "string"}, {"type": "null"}]},
        },
    },
    "InviteCreate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"ttl": {"type": "integer", "minimum": 1, "maximum": 604800}},
    },
    "InviteCreated": {
        "allOf": [
            _ref("Invite"),
            {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
        ]
    },
    "Member": {
        "type": "object",
        "required": ["id", "name", "peer", "state", "membership", "last_seen", "lag"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "peer": {"type": "string"},
            "state": {"enum": ["self", "up", "down"]},
            "membership": {"enum": ["active", "stale", "left"]},
            "last_seen": {"oneOf": [{"type": "string"}, {"type": "null"}]},
            "lag": {
                "type": "object",
                "required": ["events", "seconds"],
                "properties": {"events": {"type": "integer"}, "seconds": {"type": "number"}},
            },
            "repair": {"$ref": "#/components/schemas/RepairStats"},
        },
    },
    "MemberRecord": {
        "type": "object",
        "required": ["id", "name", "peer", "membership", "cut", "cut_reports"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "peer": {"type": "string"},
            "membership": {"enum": ["active", "left", "removed"]},
            "cut": {
                "oneOf": [{"type": "integer"}, {"type": "null"}],
                "description": "For a departed member: its events up to this sequence number "
                "count, later ones are refused (the highest cut report so far)",
            },
            "cut_reports": {"type": "integer", "description": "Members that reported so far"},
        },
    },
    "RepairStats": {
        "type": "object",
        "description": "Anti-entropy with this peer, as seen by the answering node "
        "(absent for the node itself)",
        "required": [
            "checks",
            "last_check",
            "rounds",
            "last_round",
            "last_differences",
            "last_round_trips",
            "keys_repaired",
            "keys_sent",
            "keys_received",
            "bytes_sent",
            "bytes_received",
        ],
        "properties": {
            "checks": {"type": "integer", "description": "Roots compared here with the peer's"},
            "last_check": {"oneOf": [{"type": "string"}, {"type": "null"}]},
            "rounds": {"type": "integer", "description": "Rounds this node drove to the end"},
            "last_round": {"oneOf": [{"type": "string"}, {"type": "null"}]},
            "last_differences": {
                "type": "integer",
                "description": "Keys found differing in the last round",
            },
            "last_round_trips": {"type": "integer"},
            "keys_repaired": {"type": "integer", "description": "Keys changed here"},
            "keys_sent": {"type": "integer"},
            "keys_received": {"type": "integer"},
            "bytes_sent": {"type": "integer"},
            "bytes_received": {"type": "integer"},
        },
    },
    "Applied": {
        "type": "object",
        "description": "Added to a write's answer when it asked for ?wait=N",
        "required": ["applied", "requested"],
        "properties": {"applied": {"type": "integer"}, "requested": {"type": "integer"}},
    },
    "Cluster": {
        "type": "object",
        "required": [
            "cluster",
            "node",
            "members",
            "clock",
            "merkle_root",
            "conflicts",
            "rejected_events",
            "refused_links",
            "invites",
            "storage",
        ],
        "properties": {
            "cluster": {"type": "object", "required": ["id", "name"]},
            "node": {"type": "object", "required": ["id", "name"]},
            "members": {"type": "array", "items": _ref("Member")},
            "clock": {"type": "object"},
            "merkle_root": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "conflicts": {"type": "object"},
            "rejected_events": {
                "type": "object",
                "description": "Events from peers refused, by reason",
                "additionalProperties": {"type": "integer"},
            },
            "refused_links": {
                "type": "object",
                "description": "Peer links refused at HELLO, by reason",
                "additionalProperties": {"type": "integer"},
            },
            "invites": {"type": "array", "items": _ref("Invite")},
            "storage": _ref("Storage"),
        },
    },
    "Storage": {
        "type": "object",
        "description": "Log compaction, tombstone purging and snapshots on the answering "
        "node. The row and byte counts are as of the last compaction (null before it)",
        "required": [
            "compacted",
            "compaction_runs",
            "last_compaction",
            "events_deleted",
            "tombstones_purged",
            "log_events",
            "log_bytes",
            "state_keys",
            "tombstones",
            "snapshots_sent",
            "snapshots_installed",
            "snapshots_refused",
            "last_snapshot_installed",
        ],
        "properties": {
            "compacted": {
                "type": "object",
                "description": "Per origin: the log was truncated up to this sequence number",
                "additionalProperties": {"type": "integer"},
            },
            "compaction_runs": {"type": "integer"},
            "last_compaction": _NULLABLE_TIME,
            "events_deleted": {"type": "integer", "description": "Log events deleted so far"},
            "tombstones_purged": {"type": "integer"},
            "log_events": _NULLABLE_INT,
            "log_bytes": _NULLABLE_INT,
            "state_keys": _NULLABLE_INT,
            "tombstones": _NULLABLE_INT,
            "snapshots_sent": {"type": "integer"},
            "snapshots_installed": {"type": "integer"},
            "snapshots_refused": {"type": "integer"},
            "last_snapshot_installed": _NULLABLE_TIME,
        },
    },
}


@cache
def openapi_document() -> Doc:
    zone_file = {"text/dns": {"schema": {"type": "string"}}}
    paths: Doc = {
        "/healthz": {
            "get": _op(
                "Liveness: the node is up",
                _ok(
                    "Up, and how many zones it serves",
                    {
                        "type": "object",
                        "properties": {"status": {"const": "ok"}, "zones": {"type": "integer"}},
                    },
                ),
                public=True,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (a token only when [api] metrics_auth is set)",
                {"200": {"description": "Prometheus text format"}},
                public=True,
            )
        },
        "/api/v1/openapi.json": {
            "get": _op("This document", _ok("OpenAPI 3.1", {"type": "object"}), public=True)
        },
        "/api/v1/cluster": {
            "get": _op("Cluster status", _ok("Status", _ref("Cluster")) | _errors("401", "403"))
        },
        "/api/v1/zones": {
            "get": _op(
                "List zones",
                _listing("Zones", "zones", "ZoneSummary") | _errors("401", "403"),
            ),
            "post": _op(
                "Create a zone with a SOA and NS records",
                _ok("Created", _ref("Zone"), "201") | _errors("400", "401", "403", "409"),
                body=_json(_ref("ZoneCreate")),
            ),
        },
        "/api/v1/zones/{zone}": {
            "parameters": [_ZONE_PARAM],
            "get": _op(
                "A zone; with Accept: text/dns, its zone file",
                {
                    "200": {
                        "description": "The zone",
                        "content": _json(_ref("Zone")) | zone_file,
                    }
                }
                | _errors("400", "401", "403", "404"),
            ),
            "put": _op(
                "Replace (or create) the zone atomically from a zone file",
                _ok("Replaced", _ref("ImportResult"))
                | _ok("Created", _ref("ImportResult"), "201")
                | _errors("400", "401", "403", "415"),
                body=zone_file,
            ),
            "delete": _op(
                "Delete the zone",
                {"204": {"description": "Deleted"}} | _errors("400", "401", "403", "404"),
            ),
        },
        "/api/v1/zones/{zone}/rrsets": {
            "parameters": [_ZONE_PARAM],
            "get": _op(
                "List RRsets, optionally filtered by owner name and type",
                _listing("RRsets", "rrsets", "RRset") | _errors("400", "401", "403", "404"),
            )
            | {
                "parameters": [
                    {"name": "name", "in": "query", "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "schema": {"type": "string"}},
                ]
            },
            "patch": _op(
                "Apply several RRset changes atomically: all or none",
                _ok("Applied", _ref("BatchResult")) | _errors("400", "401", "403", "404"),
                body=_json(_ref("Batch")),
            ),
        },
        "/api/v1/zones/{zone}/rrsets/{name}/{type}": {
            "parameters": [_ZONE_PARAM, _NAME_PARAM, _TYPE_PARAM],
            "get": _op(
                "One RRset", _ok("The RRset", _ref("RRset")) | _errors("400", "401", "403", "404")
            ),
            "put": _op(
                "Replace one RRset",
                _ok("Replaced", _ref("RRset"))
                | _ok("Created", _ref("RRset"), "201")
                | _errors("400", "401", "403", "404"),
                body=_json(_ref("RRsetPut")),
            ),
            "delete": _op(
                "Delete one RRset",
                {"204": {"description": "Deleted"}} | _errors("400", "401", "403", "404"),
            ),
        },
        "/api/v1/tokens": {
            "get": _op(
                "List API tokens (never their secrets)",
                _listing("Tokens", "tokens", "Token") | _errors("401", "403"),
            ),
            "post": _op(
                "Create an API token; its secret is shown only in this response",
                _ok("Created", _ref("TokenCreated"), "201") | _errors("400", "401", "403"),
                body=_json(_ref("TokenCreate")),
            ),
        },
        "/api/v1/invites": {
            "get": _op(
                "List invites and whether they were used, and by whom",
                _listing("Invites", "invites", "Invite") | _errors("401", "403"),
            ),
            "post": _op(
                "Mint a one-time join token (a JWT signed by this node)",
                _ok("Created", _ref("InviteCreated"), "201") | _errors("400", "401", "403"),
                body=_json(_ref("InviteCreate")),
                body_required=False,  # no body: the default lifetime
            ),
        },
        "/api/v1/invites/{jti}": {
            "parameters": [_path_param("jti")],
            "get": _op(
                "One invite", _ok("The invite", _ref("Invite")) | _errors("401", "403", "404")
            ),
            "delete": _op(
                "Revoke an open invite, for ever",
                {"204": {"description": "Revoked"}} | _errors("401", "403", "404", "409"),
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "parameters": [_TOKEN_PARAM],
            "get": _op("One token", _ok("The token", _ref("Token")) | _errors("401", "403", "404")),
            "delete": _op(
                "Revoke a token, for ever (force=true to revoke the last admin token)",
                {"204": {"description": "Revoked"}} | _errors("400", "401", "403", "404", "409"),
            )
            | _FORCED,
        },
        "/api/v1/members": {
            "get": _op(
                "List members, including those that left or were removed",
                _listing("Members", "members", "MemberRecord") | _errors("401", "403"),
            ),
        },
        "/api/v1/members/{node_id}": {
            "parameters": [_path_param("node_id")],
            "get": _op(
                "One member", _ok("The member", _ref("MemberRecord")) | _errors("401", "403", "404")
            ),
            "delete": _op(
                "Remove a member, for ever (force=true to remove the node answering)",
                _ok("Removed", _ref("MemberRecord")) | _errors("400", "401", "403", "404", "409"),
            )
            | _FORCED,
        },
        "/api/v1/cluster/leave": {
            "post": _op(
                "This node leaves the cluster, for ever; add wait=N to answer once N nodes "
                "applied it",
                _ok("Left", _ref("MemberRecord")) | _errors("400", "401", "403", "409"),
            ),
        },
    }
    _add_write_common(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "peer53 node API", "version": __version__},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
