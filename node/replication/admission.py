"""The issuer's side of JOIN: checking an invite, consuming it, admitting the new member.

Only the node that minted an invite accepts it, so "once" is decided here, under the
node's write lock: the invite's register must still be open, and the one event that marks
it used also makes the joiner an active member. That event is committed (durably) before
the joiner hears anything, so a second use fails even after a restart, and two joins
racing with one token cannot both win.
"""

from __future__ import annotations

import logging
import re
import time

import nacl.exceptions
import nacl.signing
import trio
from cryptography.hazmat.primitives import serialization

from node.config import ConfigError, parse_address
from node.identity import ClusterCA, IdentityFiles
from node.replication.snapshots import Snapshots
from node.replication.wire import MessageStream
from node.service import NodeState
from protocol.canonical import JSONValue
from protocol.invites import InviteError, verify_invite
from protocol.peer import Error, Join, JoinCa, JoinOk, join_proof_bytes
from protocol.statekeys import invite_key, member_key, setting_key

log = logging.getLogger("peer53.join")
JOIN_TIMEOUT = 30.0
MAX_NAME = 63
_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")
_CLOSED = {
    "used": "the invite has already been used (an invite works once)",
    "revoked": "the invite was revoked",
}


class Admission:
    def __init__(self, state: NodeState, snapshots: Snapshots) -> None:
        self.state = state
        self.snapshots = snapshots
        self.ca = ClusterCA.load(IdentityFiles(state.data_dir))

    async def __call__(self, stream: MessageStream) -> None:
        await stream.send([JoinCa(self.ca.cert_pem())])
        with trio.fail_after(JOIN_TIMEOUT):
            request = await stream.receive()
        if not isinstance(request, Join):
            await stream.send(
                [Error("protocol", "without a member certificate only JOIN is allowed")]
            )
            return
        try:
            await self._admit(request)
        except InviteError as exc:
            log.warning("refused a join: %s", exc)
            await stream.send([Error(exc.code, str(exc))])
            return
        log.info("admitted %s (%s) as a member", request.name, request.key[:12])
        # Each send gets the whole timeout: a joiner that stops reading is dropped.
        with trio.fail_after(JOIN_TIMEOUT):
            await stream.send([self._welcome(request)])
        async with self.snapshots.take() as (_, messages):
            for message in messages:
                with trio.fail_after(JOIN_TIMEOUT):
                    await stream.send([message])

    async def _admit(self, request: Join) -> None:
        state = self.state
        invite = verify_invite(
            request.token, state.identity.node_id, state.identity.cluster_id, int(time.time())
        )
        try:
            if not _SIGNATURE_HEX.fullmatch(request.proof):
                raise ValueError("the proof is not a signature in lower-case hex")
            nacl.signing.VerifyKey(bytes.fromhex(request.key)).verify(
                join_proof_bytes(request.token, request.key), bytes.fromhex(request.proof)
            )
        except (ValueError, nacl.exceptions.BadSignatureError):
            raise InviteError("bad_proof", "the joiner did not prove it holds its key") from None
        if not 1 <= len(request.name) <= MAX_NAME:
            raise InviteError("invalid_name", f"a node name must be 1-{MAX_NAME} characters")
        try:
            parse_address(request.peer, "peer address")
        except ConfigError as exc:
            raise InviteError("invalid_peer", str(exc)) from None
        if state.replica.registers.get(member_key(request.key)) is not None:
            raise InviteError("already_member", "that key already belongs to a member")

        def consume() -> dict[str, JSONValue]:
            # Runs under the write lock: nothing can consume the invite in between.
            record = state.replica.registers.value(invite_key(invite.jti))
            if not isinstance(record, dict):
                raise InviteError("unknown_invite", "this node has no record of the invite")
            if record["status"] != "open":
                raise InviteError(f"invite_{record['status']}", _CLOSED[record["status"]])
            return {
                invite_key(invite.jti): {**record, "status": "used", "used_by": request.key},
                member_key(request.key): {
                    "name": request.name,
                    "peer": request.peer,
                    "status": "active",
                },
            }

        await state.write("member.join", consume)

    def _welcome(self, request: Join) -> JoinOk:
        registers = self.state.replica.registers
        cert = self.ca.issue(nacl.signing.VerifyKey(bytes.fromhex(request.key)))
        name = registers.value(setting_key("cluster.name"))
        members = {
            node_id: {"name": str(value["name"]), "peer": str(value["peer"])}
            for node_id, value in registers.objects("member")
            if value.get("status") == "active"
        }
        return JoinOk(
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            self.ca.key_pem(),
            self.state.identity.cluster_id,
            str(name["value"]) if isinstance(name, dict) else "",
            members,
        )
