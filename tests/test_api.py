"""The HTTP API of a real node process: zones, RRsets, zone files, errors, status."""

import subprocess
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from tests.nodeproc import NodeProcess

EXAMPLES = Path(__file__).parent.parent / "examples"


def _zone_text(client: httpx.Client, zone: str) -> str:
    response = client.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"})
    assert response.status_code == 200, response.text
    return response.text


def _state(client: httpx.Client, zone: str) -> tuple[str, str]:
    """Everything observable about a zone: its file and its JSON."""
    return _zone_text(client, zone), client.get(f"/api/v1/zones/{zone}").text


def test_healthz_needs_no_token(node: NodeProcess) -> None:
    response = httpx.get(f"{node.api_url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer p53.0000000000000000." + "A" * 43])
def test_api_needs_a_valid_token(node: NodeProcess, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(f"{node.api_url}/api/v1/zones", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_zone_lifecycle_and_dns_follow(node: NodeProcess) -> None:
    with node.client() as c:
        created = c.post("/api/v1/zones", json={"name": "life.test", "ns": ["ns1.life.test."]})
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "life.test."
        assert c.post("/api/v1/zones", json={"name": "life.test."}).status_code == 409
        put = c.put(
            "/api/v1/zones/life.test/rrsets/www/A", json={"ttl": 60, "records": ["192.0.2.7"]}
        )
        assert put.status_code == 201, put.text
        answer = node.query(dns.message.make_query("WWW.life.test.", "A"))
        assert answer.rcode() == dns.rcode.NOERROR
        assert [rr.to_text() for rr in answer.answer[0]] == ["192.0.2.7"]
        assert answer.answer[0].name.to_text() == "WWW.life.test."
        listed = c.get("/api/v1/zones/life.test/rrsets", params={"type": "A"}).json()["rrsets"]
        assert listed == [
            {"name": "www.life.test.", "type": "A", "ttl": 60, "records": ["192.0.2.7"]}
        ]
        assert c.delete("/api/v1/zones/life.test/rrsets/www/A").status_code == 204
        gone = node.query(dns.message.make_query("www.life.test.", "A"))
        assert gone.rcode() == dns.rcode.NXDOMAIN
        assert c.delete("/api/v1/zones/life.test").status_code == 204
        refused = node.query(dns.message.make_query("www.life.test.", "A"))
        assert refused.rcode() == dns.rcode.REFUSED
        assert c.get("/api/v1/zones/life.test").status_code == 404


def test_import_export_round_trip_keeps_serial(node: NodeProcess, tmp_path: Path) -> None:
    text = (EXAMPLES / "example.com.zone").read_text()
    with node.client() as c:
        response = c.put(
            "/api/v1/zones/example.com", content=text, headers={"Content-Type": "text/dns"}
        )
        assert response.status_code in (200, 201), response.text
        assert response.json()["zone"]["serial"] == 2026113001
        exported = _zone_text(c, "example.com")
        path = tmp_path / "exported.zone"
        path.write_text(exported)
        check = subprocess.run(
            ["named-checkzone", "example.com", str(path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        again = c.put(
            "/api/v1/zones/example.com", content=exported, headers={"Content-Type": "text/dns"}
        )
        assert again.status_code == 200, again.text
        assert again.json()["zone"]["serial"] == 2026113002  # re-import raises the serial
        assert _zone_text(c, "example.com").replace("2026113002", "2026113001") == exported


BAD_BODIES = [
    ("post", "/api/v1/zones", b"{not json", "invalid_json"),
    ("post", "/api/v1/zones", b'{"name": "x.test", "ttl": ' + b"9" * 5000 + b"}", "invalid_json"),
    ("post", "/api/v1/zones", b'{"name": "x.test", "colour": 1}', "unknown_field"),
    ("post", "/api/v1/zones", b'{"name": "bad..name"}', "invalid_name"),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/www/A",
        b'{"ttl": 60, "records": ["300.1.1.1"]}',
        "invalid_rdata",
    ),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/www/A",
        b'{"ttl": 60, "records": ["192.0.2.1"], "x": 1}',
        "unknown_field",
    ),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/www/A",
        b'{"ttl": "60", "records": ["192.0.2.1"]}',
        "invalid_type",
    ),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/a.b..c/A",
        b'{"ttl": 60, "records": ["192.0.2.1"]}',
        "invalid_name",
    ),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/other.test./A",
        b'{"ttl": 60, "records": ["192.0.2.1"]}',
        "out_of_zone",
    ),
    (
        "put",
        "/api/v1/zones/bad.test/rrsets/alias/A",
        b'{"ttl": 60, "records": ["192.0.2.1"]}',
        "cname_conflict",
    ),
    ("delete", "/api/v1/zones/bad.test/rrsets/@/NS", b"", "missing_ns"),
    ("put", "/api/v1/zones/bad.test", b"$INCLUDE /etc/passwd\n", "zonefile_error"),
    (
        "put",
        "/api/v1/zones/bad.test",
        b"@ 3600 IN SOA ns1 h 1 1 1 1 1\n@ NS ns1\nx A nope\n",
        "zonefile_error",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), BAD_BODIES)
def test_bad_input_is_a_4xx_and_changes_nothing(
    node: NodeProcess, method: str, path: str, body: bytes, code: str
) -> None:
    with node.client() as c:
        if c.get("/api/v1/zones/bad.test").status_code == 404:
            assert c.post("/api/v1/zones", json={"name": "bad.test"}).status_code == 201
            cname = {"ttl": 60, "records": ["www.bad.test."]}
            assert c.put("/api/v1/zones/bad.test/rrsets/alias/CNAME", json=cname).status_code == 201
        before = _state(c, "bad.test")
        content_type = "text/dns" if path == "/api/v1/zones/bad.test" else "application/json"
        response = c.request(method, path, content=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] == code, response.text
        assert _state(c, "bad.test") == before


def test_zone_file_errors_name_the_line(node: NodeProcess) -> None:
    text = "$TTL 60\n@ IN SOA ns1 h 1 1 1 1 1\n@ NS ns1\nns1 A 192.0.2.1\nbad A 1.2.3\n"
    with node.client() as c:
        response = c.put(
            "/api/v1/zones/lines.test", content=text, headers={"Content-Type": "text/dns"}
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["line"] == 5, error
        assert c.get("/api/v1/zones/lines.test").status_code == 404


def test_cluster_status_lists_itself(node: NodeProcess) -> None:
    with node.client() as c:
        doc = c.get("/api/v1/cluster").json()
    assert set(doc) >= {
        "cluster",
        "node",
        "members",
        "clock",
        "merkle_root",
        "conflicts",
        "invites",
    }
    assert len(doc["merkle_root"]) == 64
    [member] = doc["members"]
    assert member["id"] == doc["node"]["id"]
    assert member["state"] == "self" and member["membership"] == "active"
    assert member["lag"] == {"events": 0, "seconds": 0.0}
    assert isinstance(member["last_seen"], str)


def test_dns_answers_for_imported_zone_types(node: NodeProcess) -> None:
    with node.client() as c:
        text = (EXAMPLES / "example.net.zone").read_text()
        response = c.put(
            "/api/v1/zones/example.net", content=text, headers={"Content-Type": "text/dns"}
        )
        assert response.status_code in (200, 201), response.text
    answer = node.query(dns.message.make_query("host-7.example.net.", "A"), tcp=True)
    assert [rr.to_text() for rr in answer.answer[0]] == ["198.51.100.7"]
    assert answer.answer[0].rdtype == dns.rdatatype.A


@pytest.mark.parametrize(
    "params",
    [
        {"wait": "0"},
        {"wait": "2"},
        {"wait": "x"},
        {"wait": "1", "timeout": "0"},
        {"wait": "1", "timeout": "301"},
        {"wait": "1", "timeout": "soon"},
        {"timeout": "5"},
    ],
)
def test_a_bad_wait_is_refused_before_anything_changes(
    node: NodeProcess, params: dict[str, str]
) -> None:
    with node.client() as c:
        c.post("/api/v1/zones", json={"name": "badwait.test", "ns": ["ns1.badwait.test."]})
        before = _state(c, "badwait.test")
        response = c.put(
            "/api/v1/zones/badwait.test/rrsets/www/A",
            params=params,
            json={"ttl": 60, "records": ["192.0.2.1"]},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_wait"
        assert _state(c, "badwait.test") == before


def test_wait_on_a_single_node_counts_itself(node: NodeProcess) -> None:
    with node.client() as c:
        made = c.post(
            "/api/v1/zones", params={"wait": 1}, json={"name": "wait1.test", "ns": ["ns.x."]}
        )
        assert made.status_code == 201
        assert (made.json()["name"], made.json()["applied"], made.json()["requested"]) == (
            "wait1.test.",
            1,
            1,
        )
        gone = c.delete("/api/v1/zones/wait1.test", params={"wait": 1, "timeout": 1})
        assert gone.status_code == 200 and gone.json() == {"applied": 1, "requested": 1}
