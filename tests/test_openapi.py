"""The OpenAPI document: valid OpenAPI 3.1, exactly the served routes, and true to responses."""

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from node.api.app import create_app
from node.api.openapi import openapi_document
from tests.nodeproc import NodeProcess

METHODS = {"get", "put", "post", "patch", "delete"}


def served_routes() -> set[tuple[str, str]]:
    """(path template, method) for every route the app serves, in OpenAPI spelling."""
    routes = set()
    for rule in _rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        path = path.replace("{rtype}", "{type}")
        for method in rule.methods or ():
            if method.lower() in METHODS:
                routes.add((path, method.lower()))
    return routes


def _rules() -> list[Any]:
    class _Unused:
        """Registering routes only keeps references; no route is called here."""

        def __getattr__(self, name: str) -> Any:
            return _Unused()

    app = create_app(_Unused())  # type: ignore[arg-type]
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def test_document_is_valid_openapi() -> None:
    validate(openapi_document())


def test_document_names_exactly_the_served_routes() -> None:
    documented = {
        (path, method)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == served_routes()


def test_the_api_reference_has_a_section_for_every_operation() -> None:
    """docs/api.md is written by hand; this keeps its sections and the document in step,
    down to the names of path parameters."""
    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    headings = re.findall(r"^#{2,3} .*?`(GET|PUT|POST|PATCH|DELETE) (/\S*)`", text, re.M)
    documented = {(method.lower(), path) for method, path in headings}
    operations = {
        (method, path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == operations


def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    doc = openapi_document()
    registry = Registry().with_resource("urn:peer53", DRAFT202012.create_resource(doc))
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:peer53#/components/schemas/{schema_name}"}, registry=registry
    )


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/api/v1/cluster", "Cluster"),
        ("/api/v1/zones/openapi.test", "Zone"),
        ("/api/v1/zones/openapi.test/rrsets/@/SOA", "RRset"),
        ("/api/v1/tokens/{admin}", "Token"),
    ],
)
def test_responses_match_their_schemas(node: NodeProcess, path: str, schema: str) -> None:
    with node.client() as c:
        if c.get("/api/v1/zones/openapi.test").status_code == 404:
            assert c.post("/api/v1/zones", json={"name": "openapi.test"}).status_code == 201
        if "{admin}" in path:
            path = path.replace("{admin}", node.token.split(".")[1])
        response = c.get(path)
        assert response.status_code == 200, response.text
        _validator(schema).validate(response.json())


def test_error_bodies_match_the_error_schema(node: NodeProcess) -> None:
    with node.client() as c:
        response = c.post(
            "/api/v1/zones", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    _validator("Error").validate(response.json())


def test_node_serves_the_document(node: NodeProcess) -> None:
    with node.client() as c:
        assert c.get("/api/v1/openapi.json").json() == openapi_document()
