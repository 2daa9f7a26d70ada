"""Strict parsing of JSON request bodies: unknown fields and wrong types are 400s."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from node.api.errors import bad_request
from protocol.canonical import CanonicalError, bounded_int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_strings_or_null(value: Any) -> bool:
    return value is None or _is_strings(value)


# Field kinds: a check and how to name it in the error message.
INT: tuple[Callable[[Any], bool], str] = (_is_int, "an integer")
STR: tuple[Callable[[Any], bool], str] = (_is_str, "a string")
BOOL: tuple[Callable[[Any], bool], str] = (_is_bool, "true or false")
STRINGS: tuple[Callable[[Any], bool], str] = (_is_strings, "a list of strings")
STRINGS_OR_NULL: tuple[Callable[[Any], bool], str] = (
    _is_strings_or_null,
    "a list of strings or null",
)
OBJECTS: tuple[Callable[[Any], bool], str] = (_is_objects, "a list of objects")
Kind = tuple[Callable[[Any], bool], str]


def parse_json_object(
    raw: bytes, required: dict[str, Kind], optional: dict[str, Kind]
) -> dict[str, Any]:
    try:
        doc = json.loads(raw, parse_int=bounded_int)
    except (UnicodeDecodeError, json.JSONDecodeError, CanonicalError) as exc:
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
        check, described = known[name]
        if not check(value):
            raise bad_request("invalid_type", f"{name} must be {described}", field=name)
    return doc
