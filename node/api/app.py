"""The node's HTTP API: the application, its error mapping, and the small routes.

Handlers validate everything before they build an event, so a rejected request changes
nothing. Each write is one event (or one all-or-nothing group for a large import) and is
answered only after it is committed. Routes live with their resource: zone_routes.py,
token_routes.py; the OpenAPI document in openapi.py describes them all.
"""

from __future__ import annotations

import time

from quart import Response, g, request
from werkzeug.exceptions import HTTPException

from node.api.context import ApiContext
from node.api.errors import ApiError, bad_request, not_found
from node.api.http_server import Peer53Quart
from node.api.invite_routes import add_invite_routes
from node.api.member_routes import add_member_routes
from node.api.metrics import ApiCounters, MetricsSources, metrics_text
from node.api.openapi import openapi_document
from node.api.responses import json_response, read_response
from node.api.token_routes import add_token_routes
from node.api.zone_routes import add_zone_routes
from node.replication.peering import Peering
from node.service import NodeState
from node.status import cluster_status
from node.zones.edits import RRsetNotFound, ZoneExists, ZoneNotFound
from node.zones.validate import ValidationError
from node.zones.zonefile import ZoneFileError

MAX_REQUEST_BYTES = 64 * 1024 * 1024


def create_app(
    state: NodeState, sources: MetricsSources | None = None, peering: Peering | None = None
) -> Peer53Quart:
    app = Peer53Quart("peer53")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = ApiContext(state, peering)
    counters = ApiCounters()
    sources = sources or MetricsSources(state)

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.errorhandler(ValidationError)
    async def validation_error(exc: ValidationError) -> Response:
        return json_response(bad_request(exc.code, exc.message, field=exc.field).body(), 400)

    @app.errorhandler(ZoneFileError)
    async def zone_file_error(exc: ZoneFileError) -> Response:
        return json_response(bad_request("zonefile_error", exc.reason, line=exc.line).body(), 400)

    @app.errorhandler(ZoneNotFound)
    async def zone_not_found(exc: ZoneNotFound) -> Response:
        return json_response(not_found(f"zone {exc} is not served here").body(), 404)

    @app.errorhandler(RRsetNotFound)
    async def rrset_not_found(exc: RRsetNotFound) -> Response:
        return json_response(not_found(str(exc)).body(), 404)

    @app.errorhandler(ZoneExists)
    async def zone_exists(exc: ZoneExists) -> Response:
        error = ApiError(409, "zone_exists", f"zone {exc} already exists")
        return json_response(error.body(), 409)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        body = {"error": {"code": code, "message": exc.description}}
        response = json_response(body, exc.code or 500)
        for name, value in exc.get_headers():
            if name.lower() == "allow":  # RFC 9110 §15.5.6: a 405 lists what is allowed
                response.headers["Allow"] = value
        return response

    # Quart runs after-request hooks last-registered first: the count sees the final status.
    @app.after_request
    async def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        counters.count(request.method, rule, response.status_code)
        return response

    @app.after_request
    async def replication(response: Response) -> Response:
        """A write with ?wait=N reports how many nodes applied it (DESIGN "HTTP API")."""
        outcome = g.get("replication")
        if outcome is None:
            return response
        doc = await response.get_json() if response.is_json else None
        merged = {**doc, **outcome} if isinstance(doc, dict) else outcome
        reply = json_response(merged, 200 if response.status_code == 204 else response.status_code)
        for name in ("ETag", "Location"):
            if name in response.headers:
                reply.headers[name] = response.headers[name]
        return reply

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok", "zones": len(state.replica.zones)})

    @app.get("/metrics")
    async def metrics() -> Response:
        if state.config.api.metrics_auth:
            api.caller().require("reader")
        text, content_type = metrics_text(sources, counters)
        return Response(text, content_type=content_type)

    @app.get("/api/v1/openapi.json")
    async def openapi() -> Response:
        return read_response(openapi_document())

    @app.get("/api/v1/cluster")
    async def cluster() -> Response:
        api.caller().require("reader")
        return json_response(cluster_status(state, time.time_ns() // 1_000_000, peering))

    add_zone_routes(app, api)
    add_token_routes(app, api)
    add_invite_routes(app, api)
    add_member_routes(app, api)
    return app
