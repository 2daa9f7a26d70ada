"""ETags on reads, If-None-Match, and If-Match on every kind of write."""

import httpx
import pytest

from tests.nodeproc import NodeProcess

A = {"ttl": 60, "records": ["192.0.2.1"]}


@pytest.fixture(scope="module")
def zone(node: NodeProcess) -> str:
    with node.client() as c:
        assert c.post("/api/v1/zones", json={"name": "etag.test"}).status_code == 201
        assert c.put("/api/v1/zones/etag.test/rrsets/www/A", json=A).status_code == 201
    return "etag.test"


def test_reads_carry_content_etags_and_304(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        paths = [
            "/api/v1/zones",
            f"/api/v1/zones/{zone}",
            f"/api/v1/zones/{zone}/rrsets",
            f"/api/v1/zones/{zone}/rrsets/www/A",
            "/api/v1/tokens",
            "/api/v1/openapi.json",
        ]
        for path in paths:
            first = c.get(path)
            etag = first.headers["ETag"]
            assert etag.startswith('"') and first.status_code == 200
            assert c.get(path).headers["ETag"] == etag  # same content, same tag
            cached = c.get(path, headers={"If-None-Match": etag})
            assert cached.status_code == 304 and cached.content == b""
        text = c.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"})
        assert text.headers["ETag"] != c.get(f"/api/v1/zones/{zone}").headers["ETag"]


def test_if_match_on_rrset_put_and_delete(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        path = f"/api/v1/zones/{zone}/rrsets/cas/A"
        missing = c.put(path, json=A, headers={"If-Match": "*"})
        assert missing.status_code == 412  # "*" needs the RRset to exist
        created = c.put(path, json=A)
        etag = created.headers["ETag"]
        assert c.get(path).headers["ETag"] == etag
        changed = {"ttl": 60, "records": ["192.0.2.2"]}
        updated = c.put(path, json=changed, headers={"If-Match": etag})
        assert updated.status_code == 200
        stale = c.put(path, json=A, headers={"If-Match": etag})  # lost update prevented
        assert stale.status_code == 412
        assert stale.json()["error"]["code"] == "precondition_failed"
        assert c.get(path).json()["records"] == ["192.0.2.2"]
        assert c.delete(path, headers={"If-Match": etag}).status_code == 412
        assert c.delete(path, headers={"If-Match": updated.headers["ETag"]}).status_code == 204


def test_if_match_on_zone_writes(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        zone_tag = c.get(f"/api/v1/zones/{zone}").headers["ETag"]
        batch = {
            "changes": [
                {"op": "put", "name": "b", "type": "A", "ttl": 60, "records": ["192.0.2.3"]}
            ]
        }
        ok = c.patch(f"/api/v1/zones/{zone}/rrsets", json=batch, headers={"If-Match": zone_tag})
        assert ok.status_code == 200, ok.text
        again = c.patch(f"/api/v1/zones/{zone}/rrsets", json=batch, headers={"If-Match": zone_tag})
        assert again.status_code == 412  # the serial moved, so the zone's tag did
        file_tag = c.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"}).headers["ETag"]
        text = c.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"}).text
        replaced = c.put(
            f"/api/v1/zones/{zone}",
            content=text,
            headers={"Content-Type": "text/dns", "If-Match": file_tag},
        )
        assert replaced.status_code == 200, replaced.text
        assert c.delete(f"/api/v1/zones/{zone}", headers={"If-Match": file_tag}).status_code == 412
        list_tag = c.get("/api/v1/zones").headers["ETag"]
        c.post("/api/v1/zones", json={"name": "etag2.test"})
        late = c.post("/api/v1/zones", json={"name": "etag3.test"}, headers={"If-Match": list_tag})
        assert late.status_code == 412
        assert c.get("/api/v1/zones/etag3.test").status_code == 404


def test_weak_tags_never_match(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        path = f"/api/v1/zones/{zone}/rrsets/www/A"
        etag = c.get(path).headers["ETag"]
        weak = c.put(path, json=A, headers={"If-Match": f"W/{etag}"})
        assert weak.status_code == 412


def test_token_revoke_honours_if_match(node: NodeProcess) -> None:
    with node.client() as c:
        made = c.post("/api/v1/tokens", json={"name": "cas", "role": "reader"}).json()
        path = f"/api/v1/tokens/{made['id']}"
        assert c.delete(path, headers={"If-Match": '"nope"'}).status_code == 412
        tag = c.get(path).headers["ETag"]
        assert c.delete(path, headers={"If-Match": tag}).status_code == 204
    assert (
        httpx.get(
            f"{node.api_url}/api/v1/zones", headers={"Authorization": f"Bearer {made['token']}"}
        ).status_code
        == 401
    )


def test_write_answers_carry_the_etag_of_the_resource(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        change = {"op": "put", "name": "chain", "type": "A", "ttl": 60, "records": ["192.0.2.4"]}
        first = c.patch(f"/api/v1/zones/{zone}/rrsets", json={"changes": [change]})
        assert first.headers["ETag"] == c.get(f"/api/v1/zones/{zone}").headers["ETag"]
        change["records"] = ["192.0.2.5"]
        chained = c.patch(
            f"/api/v1/zones/{zone}/rrsets",
            json={"changes": [change]},
            headers={"If-Match": first.headers["ETag"]},
        )
        assert chained.status_code == 200, chained.text
        made = c.post("/api/v1/tokens", json={"name": "tagged", "role": "reader"})
        assert made.headers["ETag"] == c.get(f"/api/v1/tokens/{made.json()['id']}").headers["ETag"]


def test_not_modified_has_no_body_headers(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        etag = c.get(f"/api/v1/zones/{zone}").headers["ETag"]
        cached = c.get(f"/api/v1/zones/{zone}", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert "content-type" not in cached.headers
