"""Atomic RRset batches: every change applies, or none does."""

from typing import Any

import dns.message
import pytest

from tests.nodeproc import NodeProcess


@pytest.fixture(scope="module")
def zone(node: NodeProcess) -> str:
    with node.client() as c:
        assert c.post("/api/v1/zones", json={"name": "batch.test"}).status_code == 201
        old = {"ttl": 60, "records": ["192.0.2.1"]}
        assert c.put("/api/v1/zones/batch.test/rrsets/old/A", json=old).status_code == 201
    return "batch.test"


def _put(name: str, rtype: str, *records: str) -> dict[str, Any]:
    return {"op": "put", "name": name, "type": rtype, "ttl": 60, "records": list(records)}


def test_batch_applies_all_changes_as_one_serial_step(node: NodeProcess, zone: str) -> None:
    with node.client() as c:
        serial = c.get(f"/api/v1/zones/{zone}").json()["serial"]
        body = {
            "changes": [
                _put("a", "A", "192.0.2.10"),
                _put("b", "AAAA", "2001:db8::10"),
                _put("c", "MX", "10 a"),
                {"op": "delete", "name": "old", "type": "A"},
            ]
        }
        response = c.patch(f"/api/v1/zones/{zone}/rrsets", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["changes"] == 4
        assert response.json()["zone"]["serial"] == serial + 1
    answer = node.query(dns.message.make_query(f"c.{zone}.", "MX"))
    assert answer.answer[0][0].to_text() == f"10 a.{zone}."
    gone = node.query(dns.message.make_query(f"old.{zone}.", "A"))
    assert gone.rcode() == 3


FAILING = [
    ([_put("ok1", "A", "192.0.2.1"), _put("bad", "A", "999.1.1.1")], "invalid_rdata", "changes[1]"),
    (
        [
            _put("ok1", "A", "192.0.2.1"),
            _put("alias", "CNAME", "x"),
            _put("alias", "A", "192.0.2.2"),
        ],
        "cname_conflict",
        None,
    ),
    (
        [_put("ok1", "A", "192.0.2.1"), {"op": "delete", "name": "missing", "type": "A"}],
        "not_found",
        None,
    ),
    (
        [_put("ok1", "A", "192.0.2.1"), _put("ok1", "A", "192.0.2.2")],
        "duplicate_change",
        "changes[1]",
    ),
    (
        [_put("ok1", "A", "192.0.2.1"), {"op": "frob", "name": "x", "type": "A"}],
        "invalid_op",
        "changes[1]",
    ),
    (
        [_put("ok1", "A", "192.0.2.1"), {"op": "delete", "name": "@", "type": "NS"}],
        "missing_ns",
        None,
    ),
    ([_put("ok1", "A", "192.0.2.1") | {"extra": 1}], "unknown_field", "changes[0].extra"),
    ([], "invalid_batch", "changes"),
]


@pytest.mark.parametrize(("changes", "code", "field"), FAILING)
def test_a_failing_change_changes_nothing(
    node: NodeProcess, zone: str, changes: list[dict[str, Any]], code: str, field: str | None
) -> None:
    with node.client() as c:
        before = c.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"}).text
        response = c.patch(f"/api/v1/zones/{zone}/rrsets", json={"changes": changes})
        assert 400 <= response.status_code < 500, response.text
        error = response.json()["error"]
        assert error["code"] == code, error
        if field is not None:
            assert error["field"].startswith(field), error
        after = c.get(f"/api/v1/zones/{zone}", headers={"Accept": "text/dns"}).text
        assert after == before
    nothing = node.query(dns.message.make_query(f"ok1.{zone}.", "A"))
    assert nothing.rcode() == 3
