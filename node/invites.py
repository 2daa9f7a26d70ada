"""Invites as replicated registers: minting, listing and revoking them.

The token itself is a JWT signed by this node (protocol.invites); what replicates is its
record, keyed by jti, so every node shows which invites exist, which were used and by
whom. Used and revoked are terminal (node.registers.rank). Consuming an invite happens when
a node joins, on the issuer only.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509

from node.identity import IdentityFiles, ca_pin
from node.registers import Registers
from node.service import NodeState
from protocol.canonical import JSONValue
from protocol.invites import Invite, mint_invite
from protocol.statekeys import invite_key

MAX_TTL = 7 * 24 * 3600


class InviteStateError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def create_invite(state: NodeState, ttl: int, now: int) -> tuple[Invite, dict[str, JSONValue]]:
    if not 1 <= ttl <= MAX_TTL:
        raise InviteStateError("invalid_ttl", f"ttl must be 1 to {MAX_TTL} seconds (7 days)")
    cert = x509.load_pem_x509_certificate(IdentityFiles(state.data_dir).ca_cert.read_bytes())
    invite = mint_invite(
        state.writer.key,
        state.identity.cluster_id,
        state.peer_address,
        ca_pin(cert),
        ttl,
        now,
    )
    record = {
        "issuer": invite.issuer,
        "expires": invite.expires,
        "status": "open",
        "used_by": None,
    }
    return invite, {invite_key(invite.jti): record}


def revoke_invite(registers: Registers, jti: str) -> dict[str, JSONValue]:
    value = registers.value(invite_key(jti))
    if not isinstance(value, dict):
        raise LookupError(jti)
    if value["status"] != "open":
        raise InviteStateError("not_open", f"invite {jti} is already {value['status']}")
    return {invite_key(jti): {**value, "status": "revoked"}}


def invite_doc(jti: str, value: Any, now: int) -> dict[str, Any]:
    """An invite's record; an open invite past its expiry shows as "expired"."""
    status = value["status"]
    if status == "open" and value["expires"] <= now:
        status = "expired"
    moment = datetime.datetime.fromtimestamp(value["expires"], datetime.UTC)
    return {
        "jti": jti,
        "issuer": value["issuer"],
        "expires": moment.isoformat().replace("+00:00", "Z"),
        "status": status,
        "used_by": value["used_by"],
    }


def invites_doc(registers: Registers, now: int) -> dict[str, Any]:
    listed = [invite_doc(jti, value, now) for jti, value in registers.objects("invite")]
    return {"invites": sorted(listed, key=lambda i: (i["expires"], i["jti"]))}
