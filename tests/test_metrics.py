"""/metrics: Prometheus text that a scraper can parse, with the numbers the issue names."""

import dns.message
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.nodeproc import NodeProcess


def scrape(node: NodeProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(f"{node.api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            families.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families


def test_metrics_count_zones_records_and_api_requests(node: NodeProcess) -> None:
    with node.client() as c:
        assert c.post("/api/v1/zones", json={"name": "metrics.test"}).status_code == 201
        c.get("/api/v1/zones/metrics.test/rrsets/nothing/A")  # a 404, counted by route
    node.query(dns.message.make_query("metrics.test.", "SOA"))
    metrics = scrape(node)
    assert metrics["peer53_zones"][0][1] >= 1
    assert metrics["peer53_records"][0][1] >= 2
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for labels, value in metrics["peer53_api_requests_total"]
    }
    assert requests[("POST", "/api/v1/zones", "201")] >= 1
    assert requests[("GET", "/api/v1/zones/<zone>/rrsets/<name>/<rtype>", "404")] >= 1
    assert metrics["peer53_dns_udp_received_total"][0][1] >= 1
    assert any(value >= 1 for _, value in metrics["peer53_version_vector"])
    assert metrics["peer53_gc_frozen_objects"][0][1] > 0  # frozen once loaded, at start
    assert metrics["peer53_gc_full_collections_total"][0][1] >= 0


def test_metrics_can_require_a_token(tmp_path_factory: pytest.TempPathFactory) -> None:
    node = NodeProcess.init(tmp_path_factory.mktemp("metricsauth") / "data")
    with (node.data_dir / "peer53.toml").open("a") as config:
        config.write("\n[api]\nmetrics_auth = true\n")
    node.start()
    try:
        assert httpx.get(f"{node.api_url}/metrics").status_code == 401
        with node.client() as c:
            assert c.get("/metrics").status_code == 200
    finally:
        node.stop()


def test_dns_and_cache_metrics(node: NodeProcess) -> None:
    with node.client() as c:
        if c.get("/api/v1/zones/cachemetrics.test").status_code == 404:
            assert c.post("/api/v1/zones", json={"name": "cachemetrics.test"}).status_code == 201
    before = scrape(node)
    query = dns.message.make_query("cachemetrics.test.", "SOA")
    for _ in range(20):
        node.query(query)
    node.query(dns.message.make_query("nope.cachemetrics.test.", "A"), tcp=True)
    after = scrape(node)

    def value(name: str, **labels: str) -> float:
        return sum(v for lab, v in after[name] if all(lab.get(k) == x for k, x in labels.items()))

    def old(name: str, **labels: str) -> float:
        return sum(
            v for lab, v in before.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
        )

    assert value("peer53_dns_cache_hits_total") - old("peer53_dns_cache_hits_total") >= 19
    assert value("peer53_dns_queries_total", transport="tcp") >= 1
    assert value("peer53_dns_responses_total", rcode="NXDOMAIN") >= 1
    assert value("peer53_dns_qtypes_total", qtype="SOA") >= 20
    assert value("peer53_dns_cache_entries") >= 2
    assert "peer53_dns_answer_seconds_bucket" in after
