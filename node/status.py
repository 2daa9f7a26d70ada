"""The cluster status document (DESIGN "Interfaces": GET /api/v1/cluster)."""

from __future__ import annotations

import datetime
from typing import Any

from node.invites import invites_doc
from node.replication.compaction import CompactionStats
from node.replication.peering import Peering
from node.replication.repair import RepairStats
from node.replication.snapshots import SnapshotStats
from node.service import NodeState
from protocol.clock import hlc_physical_ms
from protocol.statekeys import setting_key


def rfc3339(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339(ms)


def repair_doc(stats: RepairStats) -> dict[str, Any]:
    return {
        "checks": stats.checks,
        "last_check": _time(stats.last_check_ms),
        "rounds": stats.rounds,
        "last_round": _time(stats.last_round_ms),
        "last_differences": stats.last_differences,
        "last_round_trips": stats.last_round_trips,
        "keys_repaired": stats.keys_repaired,
        "keys_sent": stats.keys_sent,
        "keys_received": stats.keys_received,
        "bytes_sent": stats.bytes_sent,
        "bytes_received": stats.bytes_received,
    }


def storage_doc(
    compacted: dict[str, int], stats: CompactionStats, snapshots: SnapshotStats
) -> dict[str, Any]:
    return {
        "compacted": compacted,
        "compaction_runs": stats.runs,
        "last_compaction": _time(stats.last_run_ms),
        "events_deleted": stats.events_deleted,
        "tombstones_purged": stats.tombstones_purged,
        "log_events": stats.sizes.get("log_events"),
        "log_bytes": stats.sizes.get("log_bytes"),
        "state_keys": stats.sizes.get("state_keys"),
        "tombstones": stats.sizes.get("tombstones"),
        "snapshots_sent": snapshots.sent,
        "snapshots_installed": snapshots.installed,
        "snapshots_refused": snapshots.refused,
        "last_snapshot_installed": _time(snapshots.last_installed_ms),
    }


def _link(peering: Peering | None, node_id: str, now_ms: int) -> dict[str, Any]:
    if peering is None:
        return {
            "state": "down",
            "last_seen": None,
            "lag": {"events": 0, "seconds": 0.0},
            "repair": repair_doc(RepairStats()),
        }
    view = peering.views.get(node_id)
    return {
        "state": "up" if node_id in peering.links else "down",
        "last_seen": _time(None if view is None else view.last_seen_ms),
        "lag": peering.lag(node_id, now_ms),
        "repair": repair_doc(peering.repair.stats.get(node_id, RepairStats())),
    }


def _membership(value: dict[str, Any], stale: bool) -> str:
    """left, or stale: active but unheard of past the stale limit, so it no longer holds
    back compaction and resyncs from a snapshot when it returns."""
    if value.get("status") == "left":
        return "left"
    return "stale" if stale else "active"


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
                "membership": _membership(
                    value, peering is not None and node_id in peering.compactor.stale
                ),
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
        "storage": storage_doc(
            dict(state.replica.compacted),
            peering.compactor.stats if peering is not None else CompactionStats(),
            peering.snapshots.stats if peering is not None else SnapshotStats(),
        ),
    }
