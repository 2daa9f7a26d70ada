"""Prometheus exposition (``/metrics``), read from plain counters at scrape time.

Nothing on the DNS hot path touches prometheus_client: the listeners and the answer cache
keep plain integers, and this collector turns a snapshot of them into metric families when
a scrape arrives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node import __version__
from node.dns.server import ListenerStats
from node.service import NodeState


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
    extra: list[Callable[[], Iterator[Metric]]] = field(default_factory=list)


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
        for extra in self.sources.extra:
            yield from extra()


def metrics_text(sources: MetricsSources, api: ApiCounters) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(sources, api))
    return generate_latest(registry), CONTENT_TYPE_LATEST
