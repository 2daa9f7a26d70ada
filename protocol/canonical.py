"""Canonical JSON: the one byte encoding that is signed, hashed and relayed.

Sorted keys, no insignificant whitespace, UTF-8, and no floats: two nodes that build the
same value must produce the same bytes, or signatures and Merkle hashes would differ.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

JSONValue = Any


class CanonicalError(ValueError):
    """A value that has no canonical encoding (floats, non-string keys, NaN)."""


def _check(value: JSONValue, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not allowed in canonical JSON")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{path}: object keys must be strings")
            _check(item, f"{path}.{key}")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} cannot be encoded")


def is_int(value: object, low: int, high: int = 2**63 - 1) -> bool:
    """A JSON integer (not a boolean) within bounds: the check every decoder needs."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""What ``json.dumps`` with these options builds on every call: one, built once."""


def canonical_json(value: JSONValue) -> bytes:
    _check(value, "$")
    return _utf8(canonical_text(value))


def canonical_text(value: JSONValue) -> str:
    """The canonical text of a value taken from an event body. The body was checked whole
    when its event was signed or decoded, so the walk ``canonical_json`` makes first would
    find nothing: it costs a third of the encoding, and every register is encoded."""
    return _ENCODER.encode(value)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalError("strings must be valid Unicode (no lone surrogates)") from None


def _no_float(text: str) -> NoReturn:
    raise CanonicalError(f"floats are not allowed in canonical JSON: {text}")


def _no_constant(text: str) -> NoReturn:
    raise CanonicalError(f"{text} is not allowed in canonical JSON")


MAX_INT_CHARS = 20
"""A sign and 19 digits: every integer peer53 accepts fits a signed 64-bit one."""


def bounded_int(text: str) -> int:
    """A JSON integer literal, refused when longer than any peer53 accepts: Python's own
    refusal (above 4300 digits) is a bare ValueError that names an interpreter setting."""
    if len(text) > MAX_INT_CHARS:
        raise CanonicalError(f"an integer of {len(text)} characters (at most {MAX_INT_CHARS})")
    return int(text)


_DECODER = json.JSONDecoder(
    parse_float=_no_float, parse_int=bounded_int, parse_constant=_no_constant
)
"""Refuses floats (and NaN, Infinity) as it parses: all else JSON can hold has a canonical
encoding, so what it returns needs no walk before it is encoded again."""


def parse_canonical(data: bytes) -> JSONValue:
    """Parse bytes and insist they are already canonical, so re-encoding is lossless."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CanonicalError(f"not JSON: {exc}") from None
    if _utf8(canonical_text(value)) != data:
        raise CanonicalError("JSON is not in canonical form")
    return value
