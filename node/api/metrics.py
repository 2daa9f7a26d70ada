"""Prometheus exposition (``/metrics``), read from plain counters at scrape time.

Nothing on the DNS hot path touches prometheus_client: the listeners and the answer cache
keep plain integers, and this collector turns a snapshot of them into metric families when
a scrape arrives.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import dns.rcode
import dns.rdatatype
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from node import __version__, heap
from node.dns.cache import AnswerCache
from node.dns.counters import SAMPLE_EVERY
from node.dns.server import ListenerStats
from node.replication.peering import Peering
from node.service import NodeState
from node.status import cluster_status


class ApiCounters:
    """API requests by method, route template and status."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()

    def count(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, status)] += 1


@dataclass
class MetricsSources:
    """Where the numbers come from; the runtime fills in the DNS parts it owns."""

    state: NodeState
    listener: ListenerStats = field(default_factory=ListenerStats)
    cache: AnswerCache | None = None
    peering: Peering | None = None


def cluster_metrics(state: NodeState, peering: Peering | None) -> Iterator[Metric]:
    """The per-member and storage numbers of GET /api/v1/cluster, from the same function."""
    now_ms = time.time_ns() // 1_000_000
    status = cluster_status(state, now_ms, peering)
    members = status["members"]
    labels = ["id", "name"]
    up = GaugeMetricFamily("peer53_member_up", "1 when the link to a member is up", labels=labels)
    seen = GaugeMetricFamily(
        "peer53_member_last_seen_seconds", "When a member was last heard from", labels=labels
    )
    lag_events = GaugeMetricFamily(
        "peer53_member_lag_events", "Events here that a member has not acknowledged", labels=labels
    )
    lag_seconds = GaugeMetricFamily(
        "peer53_member_lag_seconds", "Age of the oldest such event", labels=labels
    )
    stale = GaugeMetricFamily(
        "peer53_member_stale",
        "1 when a member is past the stale limit: it no longer holds back compaction",
        labels=labels,
    )
    for member in members:
        if member["state"] == "self":
            continue
        key = [member["id"], member["name"]]
        up.add_metric(key, 1 if member["state"] == "up" else 0)
        stale.add_metric(key, 1 if member["membership"] == "stale" else 0)
        if peering is not None and member["id"] in peering.views:
            last = peering.views[member["id"]].last_seen_ms
            if last is not None:
                seen.add_metric(key, last / 1000)
        lag_events.add_metric(key, member["lag"]["events"])
        lag_seconds.add_metric(key, member["lag"]["seconds"])
    yield from (up, seen, lag_events, lag_seconds, stale)
    yield from repair_metrics(peering, {m["id"]: m["name"] for m in members})
    yield from storage_metrics(status["storage"])


STORAGE_COUNTERS = (
    ("compaction_runs", "Compaction passes run"),
    ("events_deleted", "Log events deleted by compaction"),
    ("tombstones_purged", "Causally stable tombstones purged"),
    ("snapshots_sent", "Snapshots sent to peers behind the compacted log"),
    ("snapshots_installed", "Snapshots installed here"),
    ("snapshots_refused", "Snapshots received and refused"),
)
STORAGE_GAUGES = (
    ("log_events", "Events in the log, as of the last compaction"),
    ("log_bytes", "Bytes of events in the log, as of the last compaction"),
    ("tombstones", "Tombstones held, as of the last compaction"),
)


def storage_metrics(storage: dict[str, Any]) -> Iterator[Metric]:
    for name, text in STORAGE_COUNTERS:
        yield CounterMetricFamily(f"peer53_{name}", text, value=storage[name])
    for name, text in STORAGE_GAUGES:
        if storage[name] is not None:
            yield GaugeMetricFamily(f"peer53_{name}", text, value=storage[name])


REPAIR_COUNTERS = (
    ("checks", "Merkle roots compared here with a member's"),
    ("rounds", "Anti-entropy rounds this node drove to the end with a member"),
    ("keys_repaired", "Keys changed here by anti-entropy with a member"),
    ("keys_sent", "Keys whose signed events were sent to a member by anti-entropy"),
    ("keys_received", "Keys whose signed events came from a member by anti-entropy"),
    ("bytes_sent", "Bytes of anti-entropy messages sent to a member"),
    ("bytes_received", "Bytes of anti-entropy messages received from a member"),
)


def repair_metrics(peering: Peering | None, names: dict[str, str]) -> Iterator[Metric]:
    labels = ["id", "name"]
    counters = {
        field_name: CounterMetricFamily(f"peer53_repair_{field_name}", text, labels=labels)
        for field_name, text in REPAIR_COUNTERS
    }
    last = GaugeMetricFamily(
        "peer53_repair_last_round_seconds", "When the last round with a member ended", labels=labels
    )
    differences = GaugeMetricFamily(
        "peer53_repair_last_differences", "Keys that differed in that round", labels=labels
    )
    for node_id, stats in sorted(peering.repair.stats.items() if peering is not None else []):
        key = [node_id, names.get(node_id, "")]
        for field_name, family in counters.items():
            family.add_metric(key, getattr(stats, field_name))
        if stats.last_round_ms is not None:
            last.add_metric(key, stats.last_round_ms / 1000)
        differences.add_metric(key, stats.last_differences)
    yield from counters.values()
    yield from (last, differences)
    rejected = CounterMetricFamily(
        "peer53_events_rejected", "Events from peers refused, by reason", labels=["reason"]
    )
    refused = CounterMetricFamily(
        "peer53_links_refused", "Peer links refused at HELLO, by reason", labels=["reason"]
    )
    if peering is not None:
        for family, counts in ((rejected, peering.rejected), (refused, peering.refused_links)):
            for reason, n in sorted(counts.items()):
                family.add_metric([reason], n)
        yield CounterMetricFamily(
            "peer53_events_copies",
            "Events from peers that were applied here already (dropped unchecked)",
            value=peering.copies,
        )
    yield rejected
    yield refused


def dns_metrics(cache: AnswerCache) -> Iterator[Metric]:
    queries = cache.query_statistics()
    transport = CounterMetricFamily(
        "peer53_dns_queries", "DNS messages answered, by transport", labels=["transport"]
    )
    transport.add_metric(["udp"], queries.udp)
    transport.add_metric(["tcp"], queries.tcp)
    yield transport
    yield CounterMetricFamily(
        "peer53_dns_dropped", "DNS messages given no answer (not queries)", value=queries.dropped
    )
    rcodes = CounterMetricFamily("peer53_dns_responses", "DNS responses by rcode", labels=["rcode"])
    for rcode, n in sorted(queries.rcodes.items()):
        rcodes.add_metric([dns.rcode.to_text(dns.rcode.Rcode.make(rcode))], n)
    yield rcodes
    qtypes = CounterMetricFamily("peer53_dns_qtypes", "DNS queries by type", labels=["qtype"])
    for qtype, n in sorted(queries.qtypes.items()):
        qtypes.add_metric([dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))], n)
    yield qtypes
    buckets, running = [], 0
    for bound, count in zip(queries.latency_buckets_ns, queries.latency_counts, strict=False):
        running += count
        buckets.append((str(bound / 1e9), running))
    running += queries.latency_counts[-1]
    buckets.append(("+Inf", running))
    yield HistogramMetricFamily(
        "peer53_dns_answer_seconds",
        f"Time to answer a query, sampled 1 in {SAMPLE_EVERY}",
        buckets=buckets,
        sum_value=queries.latency_sum_ns / 1e9,
    )
    stats = cache.statistics()
    yield GaugeMetricFamily("peer53_dns_cache_entries", "Cached responses", value=stats.entries)
    for name, value, text in (
        ("hits", stats.hits, "Queries answered from a cached response"),
        ("misses", stats.misses, "Queries the cache had no response for (one is stored)"),
        ("bypassed", stats.bypassed, "Queries answered by the full path alone"),
        ("invalidations", stats.invalidations, "Cached responses dropped by a change"),
        ("evictions", stats.evictions, "Cached responses dropped to stay within the size"),
    ):
        yield CounterMetricFamily(f"peer53_dns_cache_{name}", text, value=value)


def heap_metrics() -> Iterator[Metric]:
    """Full garbage collections stop the whole node (see ``node.heap``)."""
    full = heap.FULL_COLLECTIONS
    yield GaugeMetricFamily(
        "peer53_gc_frozen_objects",
        "Objects the garbage collector no longer walks: what the node held when it started"
        f" serving and each time {heap.LARGE_CHANGE:,} more registers were committed",
        value=heap.frozen_objects(),
    )
    yield CounterMetricFamily(
        "peer53_gc_full_collections", "Full garbage collections since start", value=full.count
    )
    yield CounterMetricFamily(
        "peer53_gc_full_collection_seconds",
        "Time spent in full garbage collections since start: the node answers nothing meanwhile",
        value=full.seconds,
    )
    yield GaugeMetricFamily(
        "peer53_gc_longest_full_collection_seconds",
        "The longest full garbage collection since start",
        value=full.longest,
    )


class NodeCollector(Collector):
    def __init__(self, sources: MetricsSources, api: ApiCounters) -> None:
        self.sources = sources
        self.api = api

    def collect(self) -> Iterator[Metric]:
        state = self.sources.state
        replica = state.replica
        info = GaugeMetricFamily("peer53_build_info", "peer53 version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        zones = list(replica.zones)
        yield GaugeMetricFamily("peer53_zones", "Zones served", value=len(zones))
        yield GaugeMetricFamily(
            "peer53_rrsets", "RRsets served", value=sum(z.rrset_count() for z in zones)
        )
        yield GaugeMetricFamily(
            "peer53_records", "Records served", value=sum(z.record_count() for z in zones)
        )
        yield GaugeMetricFamily(
            "peer53_state_keys", "Replicated registers held", value=len(replica.registers)
        )
        vv = GaugeMetricFamily(
            "peer53_version_vector",
            "Highest event sequence applied without a gap, per origin node",
            labels=["origin"],
        )
        for origin, seq in sorted(replica.vv.items()):
            vv.add_metric([origin], seq)
        yield vv
        yield CounterMetricFamily(
            "peer53_conflicting_writes",
            "Writes to a register whose value came from a concurrent event",
            value=replica.registers.conflicts,
        )
        requests = CounterMetricFamily(
            "peer53_api_requests", "HTTP API requests", labels=["method", "route", "status"]
        )
        for (method, route, status), n in sorted(self.api.requests.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests
        listener = self.sources.listener
        for item in fields(listener):
            yield CounterMetricFamily(
                f"peer53_dns_{item.name}",
                f"DNS listener counter {item.name.replace('_', ' ')}",
                value=getattr(listener, item.name),
            )
        yield from heap_metrics()
        if self.sources.cache is not None:
            yield from dns_metrics(self.sources.cache)
        yield from cluster_metrics(state, self.sources.peering)


def metrics_text(sources: MetricsSources, api: ApiCounters) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(sources, api))
    return generate_latest(registry), CONTENT_TYPE_LATEST
