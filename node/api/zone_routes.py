"""Zones, RRsets, zone files and atomic batches (``/api/v1/zones``)."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset
import trio
from quart import Response, request

from node.api.bodies import INT, OBJECTS, STR, STRINGS, parse_json_object
from node.api.context import ApiContext, zone_name
from node.api.documents import (
    etag_of_bytes,
    etag_of_doc,
    rrset_doc,
    zone_doc,
    zones_doc,
)
from node.api.errors import ApiError, bad_request
from node.api.http_server import Peer53Quart
from node.api.responses import (
    no_content,
    read_response,
    request_body,
    text_response,
    written,
)
from node.zones.edits import DEFAULT_ZONE_TTL, RRsetNotFound, Writes
from node.zones.validate import (
    ValidationError,
    ZoneChange,
    check_zone_change,
    parse_owner,
    parse_rdtype,
    parse_rrset,
)
from node.zones.zonefile import export_zone_text, parse_zone_text
from protocol.statekeys import name_text

ZONE_FILE_TYPE = "text/dns"
MAX_BATCH = 10_000


def add_zone_routes(app: Peer53Quart, api: ApiContext) -> None:
    state = api.state
    replica = state.replica
    editor = state.editor

    def zone_etags(text: str) -> Collection[str] | None:
        zone = replica.zones.get(zone_name(text))
        if zone is None:
            return None
        return {etag_of_doc(zone_doc(zone)), etag_of_bytes(export_zone_text(zone).encode())}

    def rrset_etags(zone: str, owner: dns.name.Name, rdtype: int) -> Collection[str] | None:
        rrset = api.zone(zone).get(owner, dns.rdatatype.RdataType(rdtype))
        return None if rrset is None else {etag_of_doc(rrset_doc(rrset))}

    def zones_etags() -> Collection[str]:
        return {etag_of_doc(zones_doc(list(replica.zones)))}

    @app.get("/api/v1/zones")
    async def list_zones() -> Response:
        api.caller().require("reader")
        return read_response(zones_doc(list(replica.zones)))

    @app.post("/api/v1/zones")
    async def create_zone() -> Response:
        who = api.caller()
        body = parse_json_object(await request_body(), {"name": STR}, {"ns": STRINGS, "ttl": INT})
        origin = zone_name(body["name"])
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
        await api.write(
            "zone.create", lambda: editor.create_zone(origin, ns, ttl, serial), zones_etags
        )
        return written(zone_doc(api.zone(origin.to_text())), 201)

    @app.get("/api/v1/zones/<zone>")
    async def get_zone(zone: str) -> Response:
        api.caller().require("reader")
        served = api.zone(zone)
        if request.accept_mimetypes.best == ZONE_FILE_TYPE:
            return text_response(export_zone_text(served), ZONE_FILE_TYPE)
        return read_response(zone_doc(served))

    @app.put("/api/v1/zones/<zone>")
    async def import_zone(zone: str) -> Response:
        who = api.caller()
        origin = zone_name(zone)
        who.require("editor", name_text(origin))
        if request.mimetype != ZONE_FILE_TYPE:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send the zone file as Content-Type {ZONE_FILE_TYPE}",
            )
        try:
            text = (await request_body()).decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("zonefile_error", "zone file is not UTF-8 text") from None
        rrsets = await trio.to_thread.run_sync(parse_zone_text, text, origin)
        soa = next(r for r in rrsets if r.rdtype == dns.rdatatype.SOA)
        existed = replica.zones.get(origin) is not None
        events = await api.write(
            "zone.import",
            lambda: editor.replace_zone(origin, rrsets, soa[0].serial),
            lambda: zone_etags(zone),
            bulk=True,
        )
        imported = {"rrsets": len(rrsets), "records": sum(len(r) for r in rrsets)}
        served = zone_doc(api.zone(origin.to_text()))
        doc = {"zone": served, "imported": imported, "events": len(events)}
        return written(doc, 200 if existed else 201, resource=served)

    @app.delete("/api/v1/zones/<zone>")
    async def delete_zone(zone: str) -> Response:
        who = api.caller()
        origin = zone_name(zone)
        who.require("editor", name_text(origin))
        await api.write(  # its records' rows are deleted: many, for a large zone
            "zone.delete", lambda: editor.delete_zone(origin), lambda: zone_etags(zone), bulk=True
        )
        return no_content()

    @app.get("/api/v1/zones/<zone>/rrsets")
    async def list_rrsets(zone: str) -> Response:
        api.caller().require("reader")
        served = api.zone(zone)
        name_filter = request.args.get("name")
        type_filter = request.args.get("type")
        owner = None if name_filter is None else parse_owner(served.origin, name_filter)
        rdtype = None if type_filter is None else parse_rdtype(type_filter)
        rrsets = [
            rrset_doc(r)
            for r in served.rrsets()
            if (owner is None or r.name == owner) and (rdtype is None or r.rdtype == rdtype)
        ]
        return read_response({"rrsets": rrsets})

    @app.patch("/api/v1/zones/<zone>/rrsets")
    async def change_rrsets(zone: str) -> Response:
        who = api.caller()
        origin = zone_name(zone)
        who.require("editor", name_text(origin))
        body = parse_json_object(await request_body(), {"changes": OBJECTS}, {})
        changes = parse_batch(origin, body["changes"])

        def writes() -> Writes:
            check_zone_change(api.zone(zone), changes)
            return editor.change_rrsets(origin, changes)

        await api.write("rrset.batch", writes, lambda: zone_etags(zone), bulk=True)
        served = zone_doc(api.zone(zone))
        return written({"zone": served, "changes": len(changes)}, 200, resource=served)

    @app.get("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def get_rrset(zone: str, name: str, rtype: str) -> Response:
        api.caller().require("reader")
        served = api.zone(zone)
        owner, rdtype = parse_owner(served.origin, name), parse_rdtype(rtype)
        rrset = served.get(owner, rdtype)
        if rrset is None:
            raise RRsetNotFound(f"no {rtype.upper()} RRset at {owner}")
        return read_response(rrset_doc(rrset))

    @app.put("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def put_rrset(zone: str, name: str, rtype: str) -> Response:
        who = api.caller()
        origin = zone_name(zone)
        who.require("editor", name_text(origin))
        body = parse_json_object(await request_body(), {"ttl": INT, "records": STRINGS}, {})
        rrset = parse_rrset(origin, name, rtype, body["ttl"], body["records"])
        existed = False

        def writes() -> Writes:
            nonlocal existed
            served = api.zone(zone)
            existed = served.get(rrset.name, rrset.rdtype) is not None
            change: ZoneChange = {(rrset.name, rrset.rdtype): rrset}
            check_zone_change(served, change)
            return editor.change_rrsets(origin, change)

        await api.write("rrset.put", writes, lambda: rrset_etags(zone, rrset.name, rrset.rdtype))
        return written(rrset_doc(rrset), 200 if existed else 201)

    @app.delete("/api/v1/zones/<zone>/rrsets/<name>/<rtype>")
    async def delete_rrset(zone: str, name: str, rtype: str) -> Response:
        who = api.caller()
        origin = zone_name(zone)
        who.require("editor", name_text(origin))
        owner, rdtype = parse_owner(origin, name), parse_rdtype(rtype)

        def writes() -> Writes:
            change: ZoneChange = {(owner, rdtype): None}
            check_zone_change(api.zone(zone), change)
            return editor.change_rrsets(origin, change)

        await api.write("rrset.delete", writes, lambda: rrset_etags(zone, owner, rdtype))
        return no_content()


def _prefixed(exc: ValidationError, index: int) -> ValidationError:
    return ValidationError(exc.code, f"changes[{index}].{exc.field}", exc.message)


def parse_batch(origin: dns.name.Name, items: list[dict[str, Any]]) -> ZoneChange:
    """Validate every change before any is applied; errors name the change by index."""
    if not items:
        raise bad_request("invalid_batch", "changes must not be empty", field="changes")
    if len(items) > MAX_BATCH:
        raise bad_request("invalid_batch", f"at most {MAX_BATCH} changes", field="changes")
    changes: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset | None] = {}
    for index, item in enumerate(items):
        where = f"changes[{index}]"
        op = item.get("op")
        fields = {"put": {"op", "name", "type", "ttl", "records"}, "delete": {"op", "name", "type"}}
        if not isinstance(op, str) or op not in fields:
            raise bad_request("invalid_op", f'{where}.op must be "put" or "delete"', field=where)
        if set(item) != fields[op]:
            extra = sorted(set(item) - fields[op])
            missing = sorted(fields[op] - set(item))
            code, what = ("unknown_field", extra[0]) if extra else ("missing_field", missing[0])
            raise bad_request(
                code,
                f"{where}: a {op} takes exactly {', '.join(sorted(fields[op]))}",
                field=f"{where}.{what}",
            )
        try:
            if op == "put":
                if not isinstance(item["ttl"], int) or isinstance(item["ttl"], bool):
                    raise bad_request(
                        "invalid_type", "ttl must be an integer", field=f"{where}.ttl"
                    )
                records = item["records"]
                if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
                    raise bad_request(
                        "invalid_type",
                        "records must be a list of strings",
                        field=f"{where}.records",
                    )
                rrset = parse_rrset(
                    origin, str(item["name"]), str(item["type"]), item["ttl"], records
                )
                target = (rrset.name, dns.rdatatype.RdataType(rrset.rdtype))
                value: dns.rrset.RRset | None = rrset
            else:
                target = (parse_owner(origin, str(item["name"])), parse_rdtype(str(item["type"])))
                value = None
        except ValidationError as exc:
            raise _prefixed(exc, index) from None
        if target in changes:
            raise bad_request(
                "duplicate_change",
                f"{where} changes {target[0]} {dns.rdatatype.to_text(target[1])} again",
                field=where,
            )
        changes[target] = value
    return changes
