"""API tokens (``/api/v1/tokens``): create, list, get and revoke; admin only.

A token's secret is returned once, when it is created; only its hash is stored.
"""

from __future__ import annotations

from collections.abc import Collection

from quart import Response

from node.api.bodies import STR, STRINGS_OR_NULL, parse_json_object
from node.api.context import ApiContext, query_flag, zone_name
from node.api.documents import etag_of_doc, token_doc
from node.api.errors import ApiError, bad_request, not_found
from node.api.http_server import Peer53Quart
from node.api.responses import no_content, read_response, request_body, written
from node.tokens import TokenError, create_token, revoke_token
from protocol.statekeys import name_text, token_key


def add_token_routes(app: Peer53Quart, api: ApiContext) -> None:
    registers = api.state.replica.registers

    def token_etags(token_id: str) -> Collection[str] | None:
        value = registers.value(token_key(token_id))
        return None if not isinstance(value, dict) else {etag_of_doc(token_doc(token_id, value))}

    def tokens_etags() -> Collection[str]:
        return {etag_of_doc(_tokens_doc())}

    def _tokens_doc() -> dict[str, object]:
        listed = [token_doc(tid, value) for tid, value in registers.objects("token")]
        return {"tokens": sorted(listed, key=lambda t: str(t["id"]))}

    @app.get("/api/v1/tokens")
    async def list_tokens() -> Response:
        api.caller().require("admin")
        return read_response(_tokens_doc())

    @app.post("/api/v1/tokens")
    async def create() -> Response:
        api.caller().require("admin")
        body = parse_json_object(
            await request_body(), {"name": STR, "role": STR}, {"zones": STRINGS_OR_NULL}
        )
        zones = body.get("zones")
        if zones is not None:
            zones = [name_text(zone_name(z)) for z in zones]
        try:
            token, writes = create_token(body["name"], body["role"], zones)
        except TokenError as exc:
            raise bad_request(str(exc.code), str(exc), field=exc.field) from None
        await api.write("token.create", lambda: writes, tokens_etags)
        value = registers.value(token_key(token.id))
        assert isinstance(value, dict)
        resource = token_doc(token.id, value)
        return written({**resource, "token": token.secret_text}, 201, resource=resource)

    @app.get("/api/v1/tokens/<token_id>")
    async def get_token(token_id: str) -> Response:
        api.caller().require("admin")
        value = registers.value(token_key(token_id))
        if not isinstance(value, dict):
            raise not_found(f"no token {token_id}")
        return read_response(token_doc(token_id, value))

    @app.delete("/api/v1/tokens/<token_id>")
    async def revoke(token_id: str) -> Response:
        api.caller().require("admin")
        force = query_flag("force")

        def writes() -> dict[str, object]:
            try:
                return dict(revoke_token(registers, token_id, force))
            except LookupError:
                raise not_found(f"no token {token_id}") from None
            except TokenError as exc:
                raise ApiError(409, exc.code, str(exc)) from None

        await api.write("token.revoke", writes, lambda: token_etags(token_id))
        return no_content()
