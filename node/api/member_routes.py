"""Members (``/api/v1/members``, ``/api/v1/cluster/leave``): list, remove, leave; admin only."""

from __future__ import annotations

from collections.abc import Collection

from quart import Response

from node.api.context import ApiContext, query_flag
from node.api.documents import etag_of_doc
from node.api.errors import ApiError, not_found
from node.api.http_server import Peer53Quart
from node.api.responses import json_response, read_response, written
from node.members import MemberError, leave_writes, member_doc, members_doc, removal_writes
from protocol.canonical import JSONValue
from protocol.statekeys import member_key


def _member_error(exc: MemberError) -> ApiError:
    return ApiError(409, exc.code, str(exc))


def add_member_routes(app: Peer53Quart, api: ApiContext) -> None:
    state = api.state
    replica = state.replica
    me = state.identity.node_id

    def one(node_id: str) -> dict[str, object]:
        value = replica.registers.value(member_key(node_id))
        if not isinstance(value, dict):
            raise not_found(f"no member {node_id}")
        return member_doc(replica, node_id, value)

    def member_etags(node_id: str) -> Collection[str] | None:
        value = replica.registers.value(member_key(node_id))
        if not isinstance(value, dict):
            return None
        return {etag_of_doc(member_doc(replica, node_id, value))}

    @app.get("/api/v1/members")
    async def list_members() -> Response:
        api.caller().require("admin")
        return read_response(members_doc(replica))

    @app.get("/api/v1/members/<node_id>")
    async def get_member(node_id: str) -> Response:
        api.caller().require("admin")
        return read_response(one(node_id))

    @app.delete("/api/v1/members/<node_id>")
    async def remove_member(node_id: str) -> Response:
        api.caller().require("admin")
        force = query_flag("force")

        def writes() -> dict[str, JSONValue]:
            try:
                return removal_writes(replica, node_id, me, force)
            except LookupError:
                raise not_found(f"no member {node_id}") from None
            except MemberError as exc:
                raise _member_error(exc) from None

        await api.write("member.remove", writes, lambda: member_etags(node_id))
        return written(one(node_id), 200)

    @app.post("/api/v1/cluster/leave")
    async def leave() -> Response:
        """This node leaves. With ``?wait=N`` the answer waits until N nodes applied it, so
        that the departure reaches the others before the node is stopped."""
        api.caller().require("admin")

        def writes() -> dict[str, JSONValue]:
            try:
                return leave_writes(replica, me)
            except MemberError as exc:
                raise _member_error(exc) from None

        await api.write("member.leave", writes, lambda: member_etags(me))
        return json_response(one(me))
