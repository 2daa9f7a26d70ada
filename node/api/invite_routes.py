"""Invites (``/api/v1/invites``): mint, list and revoke one-time join tokens; admin only."""

from __future__ import annotations

import time
from collections.abc import Collection

from quart import Response

from node.api.bodies import INT, parse_json_object
from node.api.context import ApiContext
from node.api.documents import etag_of_doc
from node.api.errors import ApiError, bad_request, not_found
from node.api.http_server import Peer53Quart
from node.api.responses import no_content, read_response, request_body, written
from node.invites import (
    InviteStateError,
    create_invite,
    invite_doc,
    invites_doc,
    revoke_invite,
)
from protocol.statekeys import invite_key

DEFAULT_TTL = 3600


def add_invite_routes(app: Peer53Quart, api: ApiContext) -> None:
    state = api.state
    registers = state.replica.registers

    def now() -> int:
        return int(time.time())

    def invite_etags(jti: str) -> Collection[str] | None:
        value = registers.value(invite_key(jti))
        return None if not isinstance(value, dict) else {etag_of_doc(invite_doc(jti, value, now()))}

    @app.get("/api/v1/invites")
    async def list_invites() -> Response:
        api.caller().require("admin")
        return read_response(invites_doc(registers, now()))

    @app.post("/api/v1/invites")
    async def mint_invite_token() -> Response:
        api.caller().require("admin")
        body = parse_json_object(await request_body() or b"{}", {}, {"ttl": INT})
        try:
            invite, writes = create_invite(state, body.get("ttl", DEFAULT_TTL), now())
        except InviteStateError as exc:
            raise bad_request(exc.code, str(exc), field="ttl") from None
        await api.write(
            "invite.create", lambda: writes, lambda: {etag_of_doc(invites_doc(registers, now()))}
        )
        value = registers.value(invite_key(invite.jti))
        resource = invite_doc(invite.jti, value, now())
        return written({**resource, "token": invite.token}, 201, resource=resource)

    @app.get("/api/v1/invites/<jti>")
    async def get_invite(jti: str) -> Response:
        api.caller().require("admin")
        value = registers.value(invite_key(jti))
        if not isinstance(value, dict):
            raise not_found(f"no invite {jti}")
        return read_response(invite_doc(jti, value, now()))

    @app.delete("/api/v1/invites/<jti>")
    async def withdraw_invite(jti: str) -> Response:
        api.caller().require("admin")

        def writes() -> dict[str, object]:
            try:
                return dict(revoke_invite(registers, jti))
            except LookupError:
                raise not_found(f"no invite {jti}") from None
            except InviteStateError as exc:
                raise ApiError(409, exc.code, str(exc)) from None

        await api.write("invite.revoke", writes, lambda: invite_etags(jti))
        return no_content()
