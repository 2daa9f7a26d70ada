"""Peer-link messages: what travels inside each frame, and the rules for reading it.

Theory of operation: every frame holds one message, the canonical JSON of an object whose
``type`` says what it is. Events travel as the base64 of their wire form (signature and
body bytes, exactly as signed), so they are relayed without being re-serialised. Their
signatures are not checked here: the receiver checks and counts each one, so one forged
event costs the sender that event, not the link.

A link starts with each side sending HELLO (protocol version, cluster id, node id, its
version vector and Merkle root). Nothing else is accepted before the peer's HELLO, and
a HELLO whose node id is not the key of the peer's TLS certificate, or whose cluster is
not ours, ends the link with an ERROR. After HELLO each side sends the events the other
lacks (computed from the two vectors), then new events as they commit; PING/PONG carry
the sender's vector, which doubles as an acknowledgement. PULL asks for an origin's events
after a sequence number, for a peer that fell behind a bounded send queue.

JOIN is the one exchange allowed without a member certificate: the issuer first sends
JOIN_CA (the CA certificate, which the joiner checks against its pin and against the TLS
leaf it sees), the joiner answers JOIN with the invite, its new public key and a signature
by that key over the join-proof bytes, and the issuer answers JOIN_OK (certificate, the
CA key every member keeps, and the member list) or ERROR. After JOIN_OK comes a snapshot.

SNAPSHOT messages carry the replicated state as the signed events behind it (see
``protocol.snapshot``): each event with the state keys whose value it still holds, and the
version vector the state is at; the last has ``last`` set. A member sends one to a peer
whose vector is behind this node's compaction point, instead of the events it no longer
has; a joiner gets one after JOIN_OK.

Anti-entropy (see ``protocol.repair``): ROOT offers the sender's Merkle root; a receiver
whose root differs drives a round. It sends DESCEND for tree prefixes and gets NODES (the
children's hashes, or the entries of a small subtree), then pushes its own signed events
for the keys that differ in REPAIR messages and asks for the peer's with FETCH, which is
answered by REPAIR messages whose last has ``last`` set. Every request and answer carries
the driver's round number; pushes carry round 0.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from protocol.canonical import CanonicalError, canonical_json, parse_canonical
from protocol.events import NODE_ID_RE, EventError, SignedEvent, decode_event
from protocol.merkle import ENTRY_BYTES, FANOUT, is_prefix

PROTOCOL_VERSION = 1
JOIN_PROOF_DOMAIN = b"peer53-join-v1\x00"
MAX_EVENTS_PER_MESSAGE = 1000
MAX_PREFIXES_PER_MESSAGE = 256
MAX_KEYS_PER_MESSAGE = 1000
MAX_ENTRIES_PER_NODE = 64
MAX_KEY_LENGTH = 4096
SHORT_HASH_HEX = 32  # tree hashes in NODES are cut to 128 bits: enough to tell them apart
ENTRY_HEX = 2 * ENTRY_BYTES


class MessageError(ValueError):
    """A message that breaks the protocol; the link that sent it is closed."""


@dataclass(frozen=True)
class Hello:
    version: int
    cluster: str
    node: str
    vv: dict[str, int]
    merkle_root: str


@dataclass(frozen=True)
class Events:
    events: list[SignedEvent]


@dataclass(frozen=True)
class Ping:
    vv: dict[str, int]


@dataclass(frozen=True)
class Pong:
    vv: dict[str, int]


@dataclass(frozen=True)
class Pull:
    origin: str
    after: int


@dataclass(frozen=True)
class Error:
    code: str
    message: str


@dataclass(frozen=True)
class JoinCa:
    ca_pem: str


@dataclass(frozen=True)
class Join:
    token: str
    key: str
    name: str
    peer: str
    proof: str


@dataclass(frozen=True)
class JoinOk:
    cert_pem: str
    ca_key_pem: str
    cluster: str
    cluster_name: str
    members: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Snapshot:
    """One chunk of a snapshot: ``keys[i]`` are the state keys that ``events[i]`` holds.
    Every chunk of one snapshot carries the same ``vv``."""

    vv: dict[str, int]
    events: list[SignedEvent]
    keys: list[list[str]]
    last: bool


@dataclass(frozen=True)
class Root:
    """Offered only when the sender believes both vectors are equal; the receiver
    compares roots only if its vector is ``vv`` too."""

    root: str
    vv: dict[str, int]


@dataclass(frozen=True)
class Descend:
    round: int
    prefixes: list[str]


@dataclass(frozen=True)
class TreeNode:
    """One prefix as the answering node sees it: its 16 children's (short) hashes, or,
    for a small subtree, its entries (key -> entry digest, hex)."""

    children: tuple[str, ...] | None
    entries: dict[str, str] | None


@dataclass(frozen=True)
class Nodes:
    round: int
    nodes: dict[str, TreeNode]


@dataclass(frozen=True)
class Fetch:
    round: int
    keys: list[str]


@dataclass(frozen=True)
class Repair:
    """Signed events sent for the listed keys only: the receiver applies each event's
    writes to those keys and ignores the rest."""

    round: int
    last: bool
    keys: list[str]
    events: list[SignedEvent]


Message = (
    Hello
    | Events
    | Ping
    | Pong
    | Pull
    | Error
    | JoinCa
    | Join
    | JoinOk
    | Snapshot
    | Root
    | Descend
    | Nodes
    | Fetch
    | Repair
)


def join_proof_bytes(token: str, key: str) -> bytes:
    """What a joiner signs to show it holds the private half of ``key``."""
    return JOIN_PROOF_DOMAIN + token.encode() + b"\x00" + key.encode()


def _vv(value: Any, what: str) -> dict[str, int]:
    """A message's vector without its 0 entries: a missing entry means 0, and vectors are
    compared whole (anti-entropy offers and answers a ROOT only for equal ones)."""
    if not isinstance(value, dict):
        raise MessageError(f"{what} must be an object")
    for origin, seq in value.items():
        if not NODE_ID_RE.fullmatch(origin):
            raise MessageError(f"{what} has a key that is not a node id")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise MessageError(f"{what}[{origin[:12]}] is not a sequence number")
    return {origin: seq for origin, seq in value.items() if seq}


def _str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise MessageError(f"{doc.get('type')}.{name} must be a string")
    return value


def _node_id(doc: dict[str, Any], name: str) -> str:
    value = _str(doc, name)
    if not NODE_ID_RE.fullmatch(value):
        raise MessageError(f"{doc.get('type')}.{name} is not a node id")
    return value


_FIELDS: dict[str, set[str]] = {
    "hello": {"version", "cluster", "node", "vv", "merkle_root"},
    "events": {"events"},
    "ping": {"vv"},
    "pong": {"vv"},
    "pull": {"origin", "after"},
    "error": {"code", "message"},
    "join_ca": {"ca_pem"},
    "join": {"token", "key", "name", "peer", "proof"},
    "join_ok": {"cert_pem", "ca_key_pem", "cluster", "cluster_name", "members"},
    "snapshot": {"vv", "events", "keys", "last"},
    "root": {"root", "vv"},
    "descend": {"round", "prefixes"},
    "nodes": {"round", "nodes"},
    "fetch": {"round", "keys"},
    "repair": {"round", "last", "keys", "events"},
}


def encode_message(message: Message) -> bytes:
    doc: dict[str, Any]
    match message:
        case Hello():
            doc = {
                "type": "hello",
                "version": message.version,
                "cluster": message.cluster,
                "node": message.node,
                "vv": message.vv,
                "merkle_root": message.merkle_root,
            }
        case Events():
            doc = {"type": "events", "events": _event_wires(message.events)}
        case Ping():
            doc = {"type": "ping", "vv": message.vv}
        case Pong():
            doc = {"type": "pong", "vv": message.vv}
        case Pull():
            doc = {"type": "pull", "origin": message.origin, "after": message.after}
        case Error():
            doc = {"type": "error", "code": message.code, "message": message.message}
        case JoinCa():
            doc = {"type": "join_ca", "ca_pem": message.ca_pem}
        case Join():
            doc = {
                "type": "join",
                "token": message.token,
                "key": message.key,
                "name": message.name,
                "peer": message.peer,
                "proof": message.proof,
            }
        case JoinOk():
            doc = {
                "type": "join_ok",
                "cert_pem": message.cert_pem,
                "ca_key_pem": message.ca_key_pem,
                "cluster": message.cluster,
                "cluster_name": message.cluster_name,
                "members": message.members,
            }
        case Snapshot():
            doc = {
                "type": "snapshot",
                "vv": message.vv,
                "events": _event_wires(message.events),
                "keys": message.keys,
                "last": message.last,
            }
        case Root():
            doc = {"type": "root", "root": message.root, "vv": message.vv}
        case Descend():
            doc = {"type": "descend", "round": message.round, "prefixes": message.prefixes}
        case Nodes():
            nodes = {
                prefix: {"children": list(node.children)}
                if node.children is not None
                else {"entries": node.entries}
                for prefix, node in message.nodes.items()
            }
            doc = {"type": "nodes", "round": message.round, "nodes": nodes}
        case Fetch():
            doc = {"type": "fetch", "round": message.round, "keys": message.keys}
        case Repair():
            doc = {
                "type": "repair",
                "round": message.round,
                "last": message.last,
                "keys": message.keys,
                "events": _event_wires(message.events),
            }
    return canonical_json(doc)


def decode_message(payload: bytes) -> Message:
    """Parse one frame's payload; MessageError for anything malformed."""
    try:
        doc = parse_canonical(payload)
    except CanonicalError as exc:
        raise MessageError(f"message is not canonical JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise MessageError("message must be an object with a type")
    kind = doc["type"]
    if kind not in _FIELDS:
        raise MessageError(f"unknown message type {kind!r}")
    if set(doc) - {"type"} != _FIELDS[kind]:
        raise MessageError(f"{kind} must have exactly the fields {sorted(_FIELDS[kind])}")
    match kind:
        case "hello":
            version = doc["version"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise MessageError("hello.version must be an integer")
            root = _str(doc, "merkle_root")
            if len(root) != 64:
                raise MessageError("hello.merkle_root must be 64 hex digits")
            return Hello(
                version,
                _str(doc, "cluster"),
                _node_id(doc, "node"),
                _vv(doc["vv"], "hello.vv"),
                root,
            )
        case "events":
            return Events(_events(doc["events"], "events"))
        case "ping" | "pong":
            vv = _vv(doc["vv"], f"{kind}.vv")
            return Ping(vv) if kind == "ping" else Pong(vv)
        case "pull":
            after = doc["after"]
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                raise MessageError("pull.after must be a sequence number")
            return Pull(_node_id(doc, "origin"), after)
        case "error":
            return Error(_str(doc, "code"), _str(doc, "message"))
        case "join_ca":
            return JoinCa(_str(doc, "ca_pem"))
        case "join":
            return Join(
                _str(doc, "token"),
                _node_id(doc, "key"),
                _str(doc, "name"),
                _str(doc, "peer"),
                _str(doc, "proof"),
            )
        case "snapshot":
            return _snapshot(doc)
        case "root":
            root = _str(doc, "root")
            if len(root) != 64 or not is_prefix(root):
                raise MessageError("root.root must be 64 hex digits")
            return Root(root, _vv(doc["vv"], "root.vv"))
        case "descend":
            return Descend(_round(doc), _prefixes(doc["prefixes"]))
        case "nodes":
            return Nodes(_round(doc), _tree_nodes(doc["nodes"]))
        case "fetch":
            return Fetch(_round(doc), _keys(doc["keys"], "fetch.keys"))
        case "repair":
            return Repair(
                _round(doc),
                _last(doc),
                _keys(doc["keys"], "repair.keys"),
                _events(doc["events"], "repair.events"),
            )
        case _:
            members = doc["members"]
            if not isinstance(members, dict):
                raise MessageError("join_ok.members must be an object")
            return JoinOk(
                _str(doc, "cert_pem"),
                _str(doc, "ca_key_pem"),
                _str(doc, "cluster"),
                _str(doc, "cluster_name"),
                members,
            )


def _event_wires(events: list[SignedEvent]) -> list[str]:
    return [base64.b64encode(e.to_wire()).decode() for e in events]


def _events(wires: Any, what: str) -> list[SignedEvent]:
    if not isinstance(wires, list) or len(wires) > MAX_EVENTS_PER_MESSAGE:
        raise MessageError(f"{what} must be a list of at most {MAX_EVENTS_PER_MESSAGE}")
    events = []
    for wire in wires:
        try:
            events.append(decode_event(base64.b64decode(wire, validate=True), verify=False))
        except (TypeError, binascii.Error):
            raise MessageError("an event is not base64") from None
        except EventError as exc:
            raise MessageError(f"bad event: {exc}") from None
    return events


def _last(doc: dict[str, Any]) -> bool:
    last = doc["last"]
    if not isinstance(last, bool):
        raise MessageError(f"{doc['type']}.last must be true or false")
    return last


def _snapshot(doc: dict[str, Any]) -> Snapshot:
    events = _events(doc["events"], "snapshot.events")
    keys = doc["keys"]
    if not isinstance(keys, list) or len(keys) != len(events):
        raise MessageError("snapshot.keys must hold one list of keys per event")
    if sum(len(held) if isinstance(held, list) else 0 for held in keys) > MAX_KEYS_PER_MESSAGE:
        raise MessageError(f"a snapshot message holds at most {MAX_KEYS_PER_MESSAGE} keys")
    return Snapshot(
        _vv(doc["vv"], "snapshot.vv"),
        events,
        [_keys(held, "snapshot.keys[]") for held in keys],
        _last(doc),
    )


def _round(doc: dict[str, Any]) -> int:
    value = doc["round"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise MessageError(f"{doc['type']}.round must be a non-negative integer")
    return value


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and is_prefix(value)


def _prefixes(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_PREFIXES_PER_MESSAGE
        or not all(isinstance(p, str) and is_prefix(p) for p in value)
    ):
        raise MessageError(
            f"descend.prefixes must be a list of at most {MAX_PREFIXES_PER_MESSAGE} hex prefixes"
        )
    return value


def _key(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_KEY_LENGTH


def _keys(value: Any, what: str) -> list[str]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_KEYS_PER_MESSAGE
        or not all(_key(k) for k in value)
    ):
        raise MessageError(f"{what} must be a list of at most {MAX_KEYS_PER_MESSAGE} state keys")
    return value


def _tree_nodes(value: Any) -> dict[str, TreeNode]:
    if not isinstance(value, dict) or len(value) > MAX_PREFIXES_PER_MESSAGE:
        raise MessageError(f"nodes.nodes must map at most {MAX_PREFIXES_PER_MESSAGE} prefixes")
    nodes = {}
    for prefix, node in value.items():
        if not is_prefix(prefix) or not isinstance(node, dict) or len(node) != 1:
            raise MessageError("nodes.nodes maps a hex prefix to children or entries")
        children, entries = node.get("children"), node.get("entries")
        if isinstance(children, list):
            if len(children) != FANOUT or not all(_is_hex(h, SHORT_HASH_HEX) for h in children):
                raise MessageError(f"nodes: {prefix!r} must have {FANOUT} children hashes")
            nodes[prefix] = TreeNode(tuple(children), None)
        elif isinstance(entries, dict):
            if len(entries) > MAX_ENTRIES_PER_NODE or not all(
                _key(k) and _is_hex(d, ENTRY_HEX) for k, d in entries.items()
            ):
                raise MessageError(f"nodes: {prefix!r} has malformed entries")
            nodes[prefix] = TreeNode(None, entries)
        else:
            raise MessageError("nodes.nodes maps a hex prefix to children or entries")
    return nodes


def check_hello(hello: Hello, cluster_id: str, certified_node: str) -> Error | None:
    """The HELLO rules; an Error to send (and then close) when the peer breaks one."""
    if hello.version != PROTOCOL_VERSION:
        return Error("version", f"protocol version {hello.version} is not {PROTOCOL_VERSION}")
    if hello.cluster != cluster_id:
        return Error("wrong_cluster", "this node belongs to another cluster")
    if hello.node != certified_node:
        return Error("identity", "HELLO names a node other than the TLS certificate's key")
    return None
