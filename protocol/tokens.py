"""API bearer tokens: ``p53.<id>.<secret>``.

The id finds the token's register without a scan; only a SHA-256 of the whole token is
stored and replicated, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

ROLES = ("admin", "editor", "reader")
_TOKEN_RE = re.compile(r"^p53\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewToken:
    id: str
    secret_text: str

    @property
    def hash(self) -> str:
        return token_hash(self.secret_text)


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    return NewToken(token_id, f"p53.{token_id}.{secrets.token_urlsafe(32)}")


def token_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_id(text: str) -> str | None:
    """The id part of a well-formed token, or None."""
    match = _TOKEN_RE.match(text)
    return None if match is None else match.group(1)


def token_matches(text: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(text), stored_hash)
