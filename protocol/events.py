"""Signed events: the only way replicated state changes.

The signed bytes are a fixed domain-separation prefix followed by the canonical JSON of the
event body. The body bytes are kept exactly as signed and relayed unchanged; an event's id
is the SHA-256 of the signed bytes. On the wire and in the log an event is the 64-byte
Ed25519 signature followed by the body bytes.

A node id is the lower-case hex of the node's Ed25519 public key, so the id alone is
enough to check a signature, and a TLS certificate's key names its node.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import (
    CanonicalError,
    JSONValue,
    canonical_json,
    is_int,
    parse_canonical,
)

EVENT_DOMAIN = b"peer53-event-v1\x00"
SIGNATURE_SIZE = 64
NODE_ID_RE = re.compile(r"[0-9a-f]{64}")
_BODY_FIELDS = {"cluster", "origin", "seq", "vv", "hlc", "kind", "writes", "group"}


class EventError(ValueError):
    """An event that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Group:
    """Position of an event in an all-or-nothing group (a change too big for one event)."""

    id: str
    index: int
    size: int

    def to_json(self) -> dict[str, JSONValue]:
        return {"id": self.id, "index": self.index, "size": self.size}


@dataclass(frozen=True)
class EventBody:
    cluster: str
    origin: str
    seq: int
    vv: dict[str, int]
    hlc: int
    kind: str
    writes: dict[str, JSONValue]
    group: Group | None = None

    def to_json(self) -> dict[str, JSONValue]:
        doc: dict[str, JSONValue] = {
            "cluster": self.cluster,
            "origin": self.origin,
            "seq": self.seq,
            "vv": dict(self.vv),
            "hlc": self.hlc,
            "kind": self.kind,
            "writes": self.writes,
        }
        if self.group is not None:
            doc["group"] = self.group.to_json()
        return doc

    @property
    def follows_its_origin(self) -> bool:
        """Its vector holds its origin at ``seq - 1`` (absent for the first): its origin's
        earlier events are its past, and it is not its own. One that claims more could
        never be delivered, and would hold back every later event of its origin."""
        return self.vv.get(self.origin, 0) == self.seq - 1


@dataclass(frozen=True)
class SignedEvent:
    """Made only by ``sign_event`` and ``decode_event``: both check that the body is
    canonical JSON, so its values need no second check."""

    body: EventBody
    body_bytes: bytes
    signature: bytes
    id: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(EVENT_DOMAIN + self.body_bytes).hexdigest()
        object.__setattr__(self, "id", digest)

    def to_wire(self) -> bytes:
        return self.signature + self.body_bytes


def node_id_of(verify_key: nacl.signing.VerifyKey) -> str:
    return bytes(verify_key).hex()


def sign_event(body: EventBody, key: nacl.signing.SigningKey) -> SignedEvent:
    if body.origin != node_id_of(key.verify_key):
        raise EventError("event origin is not the signing key's node id")
    body_bytes = canonical_json(body.to_json())
    signature = key.sign(EVENT_DOMAIN + body_bytes).signature
    return SignedEvent(body, body_bytes, signature)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise EventError(message)


def _parse_body(doc: Any) -> EventBody:
    _require(isinstance(doc, dict), "event body is not an object")
    unknown = set(doc) - _BODY_FIELDS
    _require(not unknown, f"unknown event fields: {sorted(unknown)}")
    missing = _BODY_FIELDS - {"group"} - set(doc)
    _require(not missing, f"missing event fields: {sorted(missing)}")
    for name in ("cluster", "origin", "kind"):
        _require(isinstance(doc[name], str) and doc[name] != "", f"{name} must be a string")
    _require(bool(NODE_ID_RE.fullmatch(doc["origin"])), "origin is not a node id")
    for name in ("seq", "hlc"):
        _require(is_int(doc[name], 1), f"{name} must be an integer from 1 to 2^63-1")
    vv = doc["vv"]
    _require(isinstance(vv, dict), "vv must be an object")
    for origin, seq in vv.items():
        _require(bool(NODE_ID_RE.fullmatch(origin)), "vv key is not a node id")
        _require(is_int(seq, 0), "vv seq must be an integer from 0 to 2^63-1")
    _require(isinstance(doc["writes"], dict) and bool(doc["writes"]), "writes must be non-empty")
    group = None
    if "group" in doc:
        g = doc["group"]
        _require(isinstance(g, dict) and set(g) == {"id", "index", "size"}, "bad group")
        _require(isinstance(g["id"], str), "group id must be a string")
        _require(is_int(g["index"], 1) and is_int(g["size"], 1), "bad group index or size")
        _require(1 <= g["index"] <= g["size"], "group index out of range")
        group = Group(g["id"], g["index"], g["size"])
    return EventBody(
        cluster=doc["cluster"],
        origin=doc["origin"],
        seq=doc["seq"],
        vv=vv,
        hlc=doc["hlc"],
        kind=doc["kind"],
        writes=doc["writes"],
        group=group,
    )


def decode_event(wire: bytes, verify: bool = True) -> SignedEvent:
    """Parse an event from its wire form and check its signature against its origin.

    ``verify=False`` is for readers that check later and count failures (a peer link
    must survive one forged event) or that read the node's own log."""
    _require(len(wire) > SIGNATURE_SIZE, "event too short")
    signature, body_bytes = wire[:SIGNATURE_SIZE], wire[SIGNATURE_SIZE:]
    try:
        doc = parse_canonical(body_bytes)
    except CanonicalError as exc:
        raise EventError(f"event body: {exc}") from None
    event = SignedEvent(_parse_body(doc), body_bytes, signature)
    if verify:
        verify_signature(event)
    return event


def verify_signature(event: SignedEvent) -> None:
    """Check the signature over the exact body bytes against the origin's key."""
    try:
        nacl.signing.VerifyKey(bytes.fromhex(event.body.origin)).verify(
            EVENT_DOMAIN + event.body_bytes, event.signature
        )
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise EventError("bad event signature") from None
