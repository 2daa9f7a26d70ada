"""What every route needs: who is calling, the served zones, and the write path."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import dns.exception
import dns.name
from quart import request

from node.api.auth import Caller, authenticate
from node.api.errors import bad_request
from node.api.preconditions import check_if_match
from node.service import NodeState
from node.zones.edits import Writes, ZoneNotFound
from node.zones.index import Zone
from protocol.events import SignedEvent

CurrentEtags = Callable[[], Collection[str] | None]


def zone_name(text: str) -> dns.name.Name:
    if not text.strip():
        raise bad_request(
            "invalid_name", "a zone name must not be empty ('.' is the root)", field="name"
        )
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise bad_request("invalid_name", f"zone name {text!r}: {exc}", field="name") from None
    return name.canonicalize()


@dataclass(frozen=True)
class ApiContext:
    state: NodeState

    def caller(self) -> Caller:
        return authenticate(self.state.replica.registers, request.headers.get("Authorization"))

    def zone(self, text: str) -> Zone:
        zone = self.state.replica.zones.get(zone_name(text))
        if zone is None:
            raise ZoneNotFound(text)
        return zone

    async def write(
        self,
        kind: str,
        make_writes: Callable[[], Writes],
        current: CurrentEtags,
    ) -> list[SignedEvent]:
        """Commit one change; If-Match is checked under the write lock, just before it."""
        condition = request.headers.get("If-Match")

        def checked() -> Writes:
            if condition is not None:
                check_if_match(condition, current())
            return make_writes()

        return await self.state.write(kind, checked)
