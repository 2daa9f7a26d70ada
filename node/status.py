"""The cluster status document (DESIGN "Interfaces": GET /api/v1/cluster)."""

from __future__ import annotations

import datetime
from typing import Any

from node.invites import invites_doc
from node.replication.peering import Peering
from node.service import NodeState
from protocol.clock import hlc_physical_ms
from protocol.statekeys import setting_key


def rfc3339(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _link(peering: Peering | None, node_id: str, now_ms: int) -> dict[str, Any]:
    if peering is None:
        return {"state": "down", "last_seen": None, "lag": {"events": 0, "seconds": 0.0}}
    view = peering.views.get(node_id)
    seen = None if view is None or view.last_seen_ms is None else rfc3339(view.last_seen_ms)
    return {
        "state": "up" if node_id in peering.links else "down",
        "last_seen": seen,
        "lag": peering.lag(node_id, now_ms),
    }


def cluster_status(state: NodeState, now_ms: int, peering: Peering | None = None) -> dict[str, Any]:
    registers = state.replica.registers
    me = state.identity.node_id
    name_value = registers.value(setting_key("cluster.name"))
    cluster_name = name_value["value"] if isinstance(name_value, dict) else ""
    members = []
    for node_id, value in registers.objects("member"):
        if value.get("status") == "removed":
            continue
        link = (
            {"state": "self", "last_seen": rfc3339(now_ms), "lag": {"events": 0, "seconds": 0.0}}
            if node_id == me
            else _link(peering, node_id, now_ms)
        )
        members.append(
            {
                "id": node_id,
                "name": value.get("name", ""),
                "peer": value.get("peer", ""),
                "membership": "left" if value.get("status") == "left" else "active",
                **link,
            }
        )
    members.sort(key=lambda m: (m["name"], m["id"]))
    return {
        "cluster": {"id": state.identity.cluster_id, "name": cluster_name},
        "node": {"id": me, "name": state.config.name},
        "members": members,
        "clock": {
            "hlc": state.writer.last_hlc,
            "hlc_time": rfc3339(hlc_physical_ms(state.writer.last_hlc)),
            "version_vector": dict(state.replica.vv),
        },
        "merkle_root": registers.merkle.root(),
        "conflicts": {"concurrent_writes": registers.conflicts},
        "rejected_events": dict(peering.rejected) if peering is not None else {},
        "refused_links": dict(peering.refused_links) if peering is not None else {},
        "invites": invites_doc(registers, now_ms // 1000)["invites"],
    }
