"""Building responses and reading request bodies, the same way on every route."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify, request

from node.api.documents import etag_of_bytes, etag_of_doc
from node.api.preconditions import not_modified


def json_response(doc: Any, status: int = 200) -> Response:
    response = jsonify(doc)
    response.status_code = status
    return response


def _not_modified() -> Response:
    response = Response("", status=304)
    del response.headers["Content-Type"]  # a 304 has no body to describe
    return response


def read_response(doc: dict[str, Any]) -> Response:
    """A GET answer with its ETag; 304 when the client's If-None-Match is current."""
    etag = etag_of_doc(doc)
    if not_modified(request.headers.get("If-None-Match"), etag):
        response = _not_modified()
    else:
        response = json_response(doc)
    response.headers["ETag"] = etag
    return response


def text_response(text: str, content_type: str) -> Response:
    etag = etag_of_bytes(text.encode())
    if not_modified(request.headers.get("If-None-Match"), etag):
        response = _not_modified()
    else:
        response = Response(text, content_type=content_type)
    response.headers["ETag"] = etag
    return response


def written(doc: dict[str, Any], status: int, resource: dict[str, Any] | None = None) -> Response:
    """A write's answer carries the resource's new ETag (the one a GET would give), so the
    client can chain If-Match writes. ``resource`` is that GET document when the answer's
    body is something else (an import report, a batch summary, a token with its secret)."""
    response = json_response(doc, status)
    response.headers["ETag"] = etag_of_doc(doc if resource is None else resource)
    return response


def no_content() -> Response:
    return Response("", status=204)


async def request_body() -> bytes:
    data = await request.get_data(as_text=False)
    return data if isinstance(data, bytes) else data.encode()


def if_match() -> str | None:
    return request.headers.get("If-Match")
