"""API tokens and roles against a real node: what each role may do, revocation, secrets."""

from collections.abc import Iterator

import httpx
import pytest

from tests.nodeproc import NodeProcess


def _token(node: NodeProcess, role: str, zones: list[str] | None = None) -> tuple[str, str]:
    with node.client() as admin:
        body = {"name": f"test {role}", "role": role, "zones": zones}
        response = admin.post("/api/v1/tokens", json=body)
        assert response.status_code == 201, response.text
        doc = response.json()
        return doc["id"], doc["token"]


@pytest.fixture(scope="module")
def zones(node: NodeProcess) -> Iterator[None]:
    with node.client() as admin:
        for zone in ("roles-a.test", "roles-b.test"):
            assert admin.post("/api/v1/zones", json={"name": zone}).status_code == 201
    yield


A_RECORD = {"ttl": 60, "records": ["192.0.2.9"]}


def test_reader_reads_but_cannot_write(node: NodeProcess, zones: None) -> None:
    _, secret = _token(node, "reader")
    with node.client(secret) as reader:
        assert reader.get("/api/v1/zones").status_code == 200
        assert reader.get("/api/v1/zones/roles-a.test/rrsets").status_code == 200
        assert reader.get("/api/v1/cluster").status_code == 200
        denied = reader.put("/api/v1/zones/roles-a.test/rrsets/w/A", json=A_RECORD)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        assert reader.post("/api/v1/zones", json={"name": "no.test"}).status_code == 403
        assert reader.get("/api/v1/tokens").status_code == 403


def test_editor_limited_to_its_zones(node: NodeProcess, zones: None) -> None:
    _, secret = _token(node, "editor", ["roles-a.test"])
    with node.client(secret) as editor:
        ok = editor.put("/api/v1/zones/roles-a.test/rrsets/w/A", json=A_RECORD)
        assert ok.status_code == 201, ok.text
        other = editor.put("/api/v1/zones/roles-b.test/rrsets/w/A", json=A_RECORD)
        assert other.status_code == 403
        assert editor.delete("/api/v1/zones/roles-b.test").status_code == 403
        assert editor.post("/api/v1/tokens", json={"name": "x", "role": "admin"}).status_code == 403
        assert editor.get("/api/v1/tokens").status_code == 403


def test_editor_for_all_zones_and_admin(node: NodeProcess, zones: None) -> None:
    _, secret = _token(node, "editor")
    with node.client(secret) as editor:
        assert editor.put("/api/v1/zones/roles-b.test/rrsets/e/A", json=A_RECORD).status_code == 201
    with node.client() as admin:
        assert admin.get("/api/v1/tokens").status_code == 200


def test_list_never_shows_secrets_and_revoked_tokens_stop_working(
    node: NodeProcess, zones: None
) -> None:
    token_id, secret = _token(node, "reader")
    with node.client() as admin:
        listing = admin.get("/api/v1/tokens")
        assert secret not in listing.text
        assert "hash" not in listing.text
        entry = next(t for t in listing.json()["tokens"] if t["id"] == token_id)
        assert entry == {
            "id": token_id,
            "name": "test reader",
            "role": "reader",
            "zones": None,
            "revoked": False,
        }
        assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 204
        assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 409
        assert admin.get(f"/api/v1/tokens/{token_id}").json()["revoked"] is True
    with node.client(secret) as revoked:
        response = revoked.get("/api/v1/zones")
        assert response.status_code == 401


def test_unknown_and_malformed_tokens(node: NodeProcess) -> None:
    for header in ("Bearer p53.0123456789abcdef." + "x" * 43, "Bearer junk", "Basic abc"):
        response = httpx.get(f"{node.api_url}/api/v1/zones", headers={"Authorization": header})
        assert response.status_code == 401
    lower = httpx.get(
        f"{node.api_url}/api/v1/zones", headers={"Authorization": f"bearer {node.token}"}
    )
    assert lower.status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "role": "root"}, "invalid_role"),
        ({"name": "x", "role": "reader", "zones": ["a.test"]}, "invalid_zones"),
        ({"name": " ", "role": "reader"}, "invalid_name"),
        ({"name": "x", "role": "reader", "extra": 1}, "unknown_field"),
        ({"role": "reader"}, "missing_field"),
    ],
)
def test_bad_token_requests(node: NodeProcess, body: dict[str, object], code: str) -> None:
    with node.client() as admin:
        before = admin.get("/api/v1/tokens").json()
        response = admin.post("/api/v1/tokens", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code
        assert admin.get("/api/v1/tokens").json() == before


def test_last_admin_token_needs_force(tmp_path_factory: pytest.TempPathFactory) -> None:
    node = NodeProcess.init(tmp_path_factory.mktemp("lastadmin") / "data").start()
    try:
        with node.client() as admin:
            [only] = admin.get("/api/v1/tokens").json()["tokens"]
            refused = admin.delete(f"/api/v1/tokens/{only['id']}")
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "last_admin"
            assert admin.get("/api/v1/zones").status_code == 200
            assert admin.delete(f"/api/v1/tokens/{only['id']}?force=true").status_code == 204
            assert admin.get("/api/v1/zones").status_code == 401
    finally:
        node.stop()
