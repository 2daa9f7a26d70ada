"""Conditional requests (RFC 9110 §13): If-Match on writes, If-None-Match on reads.

If-Match is checked on the node that takes the write, under the write lock, against the
resource as it is when the write applies; a mismatch is 412 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection

from node.api.errors import ApiError


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def check_if_match(header: str | None, current: Collection[str] | None) -> None:
    """``current``: the ETags of the resource's representations, None if it does not exist."""
    if header is None:
        return
    tags = _tags(header)
    if "*" in tags and current is not None:
        return
    # Weak tags never match under If-Match's strong comparison (RFC 9110 §13.1.1).
    if current is not None and any(tag in current for tag in tags if not tag.startswith("W/")):
        return
    raise ApiError(
        412,
        "precondition_failed",
        "the resource has changed (If-Match does not match its current ETag)"
        if current is not None
        else "the resource does not exist (If-Match needs it to)",
    )


def not_modified(header: str | None, etag: str) -> bool:
    """If-None-Match on a read: True when the client's copy is current (answer 304)."""
    if header is None:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or etag in tags
