"""What every route needs: who is calling, the served zones, and the write path."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import dns.exception
import dns.name
from quart import g, request

from node.api.auth import Caller, authenticate
from node.api.errors import ApiError, bad_request
from node.api.preconditions import check_if_match
from node.replication.peering import Peering
from node.service import NodeState, WritesHeld
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


_FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def query_flag(name: str) -> bool:
    """A boolean query parameter such as ``force``; anything unclear is a 400, never a
    guess."""
    values = request.args.getlist(name)
    if not values:
        return False
    flags = {_FLAG_VALUES.get(v.lower()) for v in values}
    if None in flags or len(flags) != 1:
        raise bad_request(
            f"invalid_{name}", f"{name} must be true or false (also 1/0, yes/no)", field=name
        )
    return flags.pop() is True


DEFAULT_WAIT_TIMEOUT = 10.0
MAX_WAIT_TIMEOUT = 300.0


@dataclass(frozen=True)
class WaitFor:
    nodes: int
    timeout: float


def wait_request(active_members: Callable[[], int]) -> WaitFor | None:
    """``?wait=N[&timeout=S]``: checked before the write, so a bad value changes nothing."""
    wait, timeout = request.args.get("wait"), request.args.get("timeout")
    if wait is None:
        if timeout is not None:
            raise bad_request("invalid_wait", "timeout needs wait=N", field="timeout")
        return None
    members = active_members()
    if not wait.isdigit() or not 1 <= int(wait) <= members:
        raise bad_request(
            "invalid_wait",
            f"wait must be a whole number of nodes from 1 to {members} (active members)",
            field="wait",
        )
    seconds = DEFAULT_WAIT_TIMEOUT
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= MAX_WAIT_TIMEOUT:
            raise bad_request(
                "invalid_wait",
                f"timeout must be more than 0 and at most {MAX_WAIT_TIMEOUT:g} seconds",
                field="timeout",
            )
    return WaitFor(int(wait), seconds)


@dataclass(frozen=True)
class ApiContext:
    state: NodeState
    peering: Peering | None = None

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
        *,
        bulk: bool = False,
    ) -> list[SignedEvent]:
        """Commit one change; If-Match is checked under the write lock, just before it.
        A ``bulk`` change (an import, a batch) is built and committed in a worker thread;
        any other on the trio thread (``NodeState.write``).

        With ``?wait=N`` the answer waits until N nodes applied the change (or the
        timeout passed); ``g.replication`` then says how many did.
        """
        condition = request.headers.get("If-Match")
        wait = wait_request(lambda: len(self.state.replica.active_members()))

        def checked() -> Writes:
            me = self.state.identity.node_id
            if not self.state.replica.is_member(me):
                why = {"left": "has left the cluster", "removed": "was removed from the cluster"}
                status = self.state.replica.membership(me) or ""
                raise ApiError(
                    409,
                    "not_a_member",
                    f"this node {why.get(status, 'is not a member')}: it takes no writes; "
                    "use another member",
                )
            if condition is not None:
                check_if_match(condition, current())
            return make_writes()

        try:
            events = await self.state.write(kind, checked, inline=not bulk)
        except WritesHeld as exc:
            raise ApiError(503, "writes_held", str(exc)) from None
        if wait is not None:
            last = events[-1].body
            applied = (
                1
                if self.peering is None
                else await self.peering.wait_applied(
                    last.origin, last.seq, wait.nodes, wait.timeout
                )
            )
            g.replication = {"applied": applied, "requested": wait.nodes}
        return events
