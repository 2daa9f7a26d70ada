"""Bearer-token authentication and roles.

Tokens live in replicated registers as hashes; the token's id part finds its register and
the hash is compared in constant time. Roles: ``admin`` (everything), ``editor`` (zone data,
for all zones or a list), ``reader`` (reads only).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.api.errors import ApiError
from node.registers import Registers
from protocol.statekeys import token_key
from protocol.tokens import token_id, token_matches


@dataclass(frozen=True)
class Caller:
    token_id: str
    role: str
    zones: frozenset[str] | None  # None: every zone

    def require(self, role: str, zone: str | None = None) -> None:
        allowed = {"reader": ("reader", "editor", "admin"), "editor": ("editor", "admin")}
        if role == "admin" and self.role != "admin":
            raise ApiError(403, "forbidden", "this needs an admin token")
        if role != "admin" and self.role not in allowed[role]:
            raise ApiError(403, "forbidden", f"this needs an {role} or admin token")
        if zone is not None and self.zones is not None and zone not in self.zones:
            raise ApiError(403, "forbidden", f"this token may not change zone {zone}")


def authenticate(registers: Registers, header: str | None) -> Caller:
    unauthorised = ApiError(401, "unauthorized", "missing or invalid bearer token")
    scheme, _, text = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":  # RFC 9110 §11.1: the scheme is case-insensitive
        raise unauthorised
    text = text.strip()
    tid = token_id(text)
    if tid is None:
        raise unauthorised
    value = registers.value(token_key(tid))
    if not isinstance(value, dict) or "hash" not in value:
        raise unauthorised
    if not token_matches(text, value["hash"]):
        raise unauthorised
    zones = value.get("zones")
    return Caller(tid, value["role"], None if zones is None else frozenset(zones))
