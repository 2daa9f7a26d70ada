"""/metrics: Prometheus text that a scraper can parse, with the numbers the issue names."""

import dns.message
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.nodeproc import NodeProcess


def _scrape(node: NodeProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
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
    metrics = _scrape(node)
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
