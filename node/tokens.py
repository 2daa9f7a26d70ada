"""API tokens as replicated registers: creating and revoking them.

Revocation is terminal (node.registers.rank): a revoked token never works again,
whatever concurrent writes say.
"""

from __future__ import annotations

from node.registers import Registers
from protocol.canonical import JSONValue
from protocol.statekeys import token_key
from protocol.tokens import ROLES, NewToken, new_token


class TokenError(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def create_token(
    name: str, role: str, zones: list[str] | None
) -> tuple[NewToken, dict[str, JSONValue]]:
    if role not in ROLES:
        raise TokenError("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    if zones is not None and role != "editor":
        raise TokenError("invalid_zones", "only editor tokens are limited to zones", "zones")
    if not name.strip():
        raise TokenError("invalid_name", "a token needs a name, to tell tokens apart", "name")
    token = new_token()
    value = {"name": name, "role": role, "zones": zones, "hash": token.hash}
    return token, {token_key(token.id): value}


def active_admins(registers: Registers) -> list[str]:
    return [
        tid
        for tid, v in registers.objects("token")
        if not v.get("revoked") and v["role"] == "admin"
    ]


def revoke_token(registers: Registers, token_id: str, force: bool) -> dict[str, JSONValue]:
    value = registers.value(token_key(token_id))
    if not isinstance(value, dict):
        raise LookupError(token_id)
    if value.get("revoked"):
        raise TokenError("already_revoked", f"token {token_id} is already revoked")
    if not force and active_admins(registers) == [token_id]:
        raise TokenError(
            "last_admin",
            "this is the last admin token: revoking it leaves no way to administer the "
            "cluster through the API; create another admin token first, or pass force=true",
        )
    return {token_key(token_id): {"revoked": True}}
