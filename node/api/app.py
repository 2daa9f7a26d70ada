"""The node's HTTP API (``/api/v1``): zones, RRsets, zone files and cluster status.

Handlers validate everything before they build an event, so a rejected request changes
nothing. Each write is one event (or one all-or-nothing group for a large import) and is
answered only after it is committed.
"""

from __future__ import annotations

import time
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset
import trio
from quart import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from node.api.auth import Caller, authenticate
from node.api.bodies import parse_json_object
from node.api.errors import ApiError, bad_request, not_found
from node.api.http_server import Peer53Quart
from node.service import NodeState
from node.status import cluster_status
from node.zones.edits import DEFAULT_ZONE_TTL, RRsetNotFound, Writes, ZoneExists, ZoneNotFound
from node.zones.index import Zone
from node.zones.validate import (
    ValidationError,
    check_zone_change,
    parse_owner,
    parse_rdtype,
    parse_rrset,
)
from node.zones.zonefile import ZoneFileError, export_zone_text, parse_zone_text
from protocol.statekeys import name_text

ZONE_FILE_TYPE = "text/dns"
MAX_ZONE_FILE_BYTES = 64 * 1024 * 1024


def _json(doc: Any, status: int = 200) -> Response:
    response = jsonify(doc)
    response.status_code = status
    return response


async def _body() -> bytes:
    data = await request.get_data(as_text=False)
    return data if isinstance(data, bytes) else data.encode()


def _zone_name(text: str) -> dns.name.Name:
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise bad_request("invalid_name", f"zone name {text!r}: {exc}", field="name") from None
    return name.canonicalize()


def _rrset_doc(rrset: dns.rrset.RRset) -> dict[str, Any]:
    return {
        "name": rrset.name.to_text(),
        "type": dns.rdatatype.to_text(rrset.rdtype),
        "ttl": rrset.ttl,
        "records": sorted(rd.to_text() for rd in rrset),
    }


def _soa_doc(zone: Zone) -> dict[str, Any]:
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


def _zone_doc(zone: Zone, detail: bool = True) -> dict[str, Any]:
    soa = _soa_doc(zone)
    doc: dict[str, Any] = {
        "name": zone.origin.to_text(),
        "serial": soa["serial"],
        "rrsets": zone.rrset_count(),
        "records": zone.record_count(),
    }
    if detail:
        doc["soa"] = soa
    return doc


def create_app(state: NodeState) -> Peer53Quart:
    app = Peer53Quart("peer53")
    app.config["MAX_CONTENT_LENGTH"] = MAX_ZONE_FILE_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    replica = state.replica
    editor = state.editor

    def caller() -> Caller:
        return authenticate(replica.registers, request.headers.get("Authorization"))

    def served_zone(text: str) -> Zone:
        zone = replica.zones.get(_zone_name(text))
        if zone is None:
            raise ZoneNotFound(text)
        return zone

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return _json(exc.body(), exc.status)

    @app.errorhandler(ValidationError)
    async def validation_error(exc: ValidationError) -> Response:
        return _json(bad_request(exc.code, exc.message, field=exc.field).body(), 400)

    @app.errorhandler(ZoneFileError)
    async def zone_file_error(exc: ZoneFileError) -> Response:
        error = bad_request("zonefile_error", exc.reason, line=exc.line)
        return _json(error.body(), 400)

    @app.errorhandler(ZoneNotFound)
    async def zone_not_found(exc: ZoneNotFound) -> Response:
        return _json(not_found(f"zone {exc} is not served here").body(), 404)

    @app.errorhandler(RRsetNotFound)
    async def rrset_not_found(exc: RRsetNotFound) -> Response:
        return _json(not_found(str(exc)).body(), 404)

    @app.errorhandler(ZoneExists)
    async def zone_exists(exc: ZoneExists) -> Response:
        return _json(ApiError(409, "zone_exists", f"zone {exc} already exists").body(), 409)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _json({"error": {"code": code, "message": exc.description}}, exc.code or 500)

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok", "zones": len(replica.zones)})

    @app.get("/api/v1/cluster")
    async def cluster() -> Response:
        caller().require("reader")
        return _json(cluster_status(state, time.time_ns() // 1_000_000))

    @app.get("/api/v1/zones")
    async def list_zones() -> Response:
        caller().require("reader")
        zones = sorted(replica.zones, key=lambda z: z.origin)
        return _json({"zones": [_zone_doc(z, detail=False) for z in zones]})

    @app.post("/api/v1/zones")
    async def create_zone() -> Response:
        who = caller()
        body = parse_json_object(await _body(), {"name": str}, {"ns": list, "ttl": int})
        origin = _zone_name(body["name"])
        who.require("editor", name_text(origin))
        ttl = body.get("ttl", DEFAULT_ZONE_TTL)
        if not 0 <= ttl <= 2**31 - 1:
            raise bad_request("invalid_ttl", "ttl must be 0..2147483647", field="ttl")
        hosts = body.get("ns") or [f"ns1.{origin.to_text()}"]
        try:
            ns = [parse_owner(dns.name.root, h if h.endswith(".") else h + ".") for h in hosts]
        except ValidationError as exc:
            raise bad_request("invalid_name", f"ns: {exc.message}", field="ns") from None
        serial = int(time.strftime("%Y%m%d00", time.gmtime()))
        await state.write("zone.create", lambda: editor.create_zone(origin, ns, ttl, serial))
        return _json(_zone_doc(served_zone(origin.to_text())), 201)

    @app.get("/api/v1/zones/<zone>")
    async def get_zone(zone: str) -> Response:
        caller().require("reader")
        served = served_zone(zone)
        if request.accept_mimetypes.best == ZONE_FILE_TYPE:
            return Response(export_zone_text(served), content_type=ZONE_FILE_TYPE)
        return _json(_zone_doc(served))

    @app.put("/api/v1/zones/<zone>")
    async def import_zone(zone: str) -> Response:
        who = caller()
        origin = _zone_name(zone)
        who.require("editor", name_text(origin))
        if request.mimetype != ZONE_FILE_TYPE:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send the zone file as Content-Type {ZONE_FILE_TYPE}",
            )
        try:
            text = (await _body()).decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("zonefile_error", "zone file is not UTF-8 text") from None
        rrsets = await trio.to_thread.run_sync(parse_zone_text, text, origin)
        soa = next(r for r in rrsets if r.rdtype == dns.rdatatype.SOA)
        existed = replica.zones.get(origin) is not None
        events = await state.write(
            "zone.import", lambda: editor.replace_zone(origin, rrsets, soa[0].serial)
        )
        imported = {"rrsets": len(rrsets), "records": sum(len(r) for r in rrsets)}
        return _json(
            {
                "zone": _zone_doc(served_zone(origin.to_text())),
                "imported": imported,
                "events": len(events),
            },
            200 if existed else 201,
        )

    @app.delete("/api/v1/zones/<zone>")
    async def delete_zone(zone: str) -> Response:
        who = caller()
        origin = _zone_name(zone)
        who.require("editor", name_text(origin))
        await state.write("zone.delete", lambda: editor.delete_zone(origin))
        return Response("", status=204)

    @app.get("/api/v1/zones/<zone>/rrsets")
    async def list_rrsets(zone: str) -> Response:
        caller().require("reader")
        served = served_zone(zone)
        name_filter = request.args.get("name")
        type_filter = request.args.get("type")
        owner = None if name_filter is None else parse_owner(served.origin, name_filter)
        rdtype = None if type_filter is None else parse_rdtype(type_filter)
        rrsets = [
            _rrset_doc(r)
            for r in served.rrsets()
            if (owner is None or r.name == owner) and (rdtype is None or r.rdtype == rdtype)
        ]
        return _json({"rrsets": rrsets})

    @app.get("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def get_rrset(zone: str, name: str, rtype: str) -> Response:
        caller().require("reader")
        served = served_zone(zone)
        owner, rdtype = parse_owner(served.origin, name), parse_rdtype(rtype)
        rrset = served.get(owner, rdtype)
        if rrset is None:
            raise RRsetNotFound(f"no {rtype.upper()} RRset at {owner}")
        return _json(_rrset_doc(rrset))

    @app.put("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def put_rrset(zone: str, name: str, rtype: str) -> Response:
        who = caller()
        origin = _zone_name(zone)
        who.require("editor", name_text(origin))
        body = parse_json_object(await _body(), {"ttl": int, "records": list}, {})
        rrset = parse_rrset(origin, name, rtype, body["ttl"], body["records"])
        existed = False

        def writes() -> Writes:
            nonlocal existed
            served = served_zone(zone)
            existed = served.get(rrset.name, rrset.rdtype) is not None
            check_zone_change(served, {(rrset.name, rrset.rdtype): rrset})
            return editor.put_rrset(origin, rrset)

        await state.write("rrset.put", writes)
        return _json(_rrset_doc(rrset), 200 if existed else 201)

    @app.delete("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def delete_rrset(zone: str, name: str, rtype: str) -> Response:
        who = caller()
        origin = _zone_name(zone)
        who.require("editor", name_text(origin))
        owner, rdtype = parse_owner(origin, name), parse_rdtype(rtype)

        def writes() -> Writes:
            check_zone_change(served_zone(zone), {(owner, rdtype): None})
            return editor.delete_rrset(origin, owner, rdtype)

        await state.write("rrset.delete", writes)
        return Response("", status=204)

    return app
