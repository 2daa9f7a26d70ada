"""Members as replicated registers: listing them, removing one, and leaving.

Leaving and removal are terminal (node.registers.rank). Both write the writer's cut
report in the same event, so that the writer's own view of the departed node's events
counts (see ``protocol.membership``).
"""

from __future__ import annotations

from typing import Any

from node.replica import Replica
from protocol.canonical import JSONValue
from protocol.membership import cut_key
from protocol.statekeys import member_key


class MemberError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def member_doc(replica: Replica, node_id: str, value: dict[str, Any]) -> dict[str, Any]:
    reports = replica.cut_reports(node_id)
    return {
        "id": node_id,
        "name": value.get("name", ""),
        "peer": value.get("peer", ""),
        "membership": value.get("status", ""),
        "cut": max(reports.values()) if reports else None,
        "cut_reports": len(reports),
    }


def members_doc(replica: Replica) -> dict[str, Any]:
    listed = [member_doc(replica, i, v) for i, v in replica.registers.objects("member")]
    return {"members": sorted(listed, key=lambda m: (m["name"], m["id"]))}


def _departure(replica: Replica, node_id: str, status: str, me: str) -> dict[str, JSONValue]:
    """The writes that end ``node_id``'s membership, with ``me``'s cut report. A node's
    own departure also counts the event that carries it (its next sequence number)."""
    value = replica.registers.value(member_key(node_id))
    assert isinstance(value, dict)
    seen = replica.seen(node_id) + (1 if node_id == me else 0)
    return {
        member_key(node_id): {**value, "status": status},
        cut_key(node_id, me): {"seq": seen},
    }


def removal_writes(replica: Replica, node_id: str, me: str, force: bool) -> dict[str, JSONValue]:
    status = replica.membership(node_id)
    if status is None:
        raise LookupError(node_id)
    if status != "active":
        raise MemberError("not_active", f"member {node_id[:12]} already {status}")
    active = replica.active_members()
    if active == [node_id]:
        raise MemberError(
            "last_member", "this is the only active member: a cluster needs at least one"
        )
    if node_id == me and not force:
        raise MemberError(
            "removing_self",
            "this is the node answering this request: once removed it takes no writes and "
            "links to nobody, so you could no longer administer the cluster through it. "
            "Ask another member to remove it, or pass force (peer53ctl member remove --force)",
        )
    return _departure(replica, node_id, "removed", me)


def leave_writes(replica: Replica, me: str) -> dict[str, JSONValue]:
    if not replica.is_member(me):
        raise MemberError("not_a_member", "this node is not an active member")
    if replica.active_members() == [me]:
        raise MemberError(
            "last_member", "this is the only active member: a cluster needs at least one"
        )
    return _departure(replica, me, "left", me)
