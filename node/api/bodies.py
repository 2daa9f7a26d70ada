"""Strict parsing of JSON request bodies: unknown fields and wrong types are 400s."""

from __future__ import annotations

import json
from typing import Any

from node.api.errors import bad_request


def parse_json_object(
    raw: bytes, required: dict[str, type], optional: dict[str, type]
) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request("invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise bad_request("invalid_json", "request body must be a JSON object")
    known = {**required, **optional}
    for name in doc:
        if name not in known:
            raise bad_request("unknown_field", f"unknown field {name!r}", field=name)
    for name in required:
        if name not in doc:
            raise bad_request("missing_field", f"field {name!r} is required", field=name)
    for name, value in doc.items():
        expected = known[name]
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad_request("invalid_type", f"{name} must be an integer", field=name)
        strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if expected is list and not strings:
            raise bad_request("invalid_type", f"{name} must be a list of strings", field=name)
        if expected is str and not isinstance(value, str):
            raise bad_request("invalid_type", f"{name} must be a string", field=name)
    return doc
