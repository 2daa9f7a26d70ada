"""Peer messages: every kind round-trips, and malformed frames are MessageErrors."""

import nacl.signing
import pytest

from protocol.canonical import canonical_json
from protocol.clock import vv_missing
from protocol.events import EventBody, node_id_of, sign_event
from protocol.peer import (
    PROTOCOL_VERSION,
    Descend,
    Error,
    Events,
    Fetch,
    Hello,
    Join,
    JoinCa,
    JoinOk,
    Message,
    MessageError,
    Nodes,
    Ping,
    Pong,
    Pull,
    Repair,
    Root,
    Snapshot,
    TreeNode,
    check_hello,
    decode_message,
    encode_message,
)

KEY = nacl.signing.SigningKey.generate()
ME = node_id_of(KEY.verify_key)
EVENT = sign_event(
    EventBody("c", ME, 1, {}, 1 << 16, "test", {"zone x.": {"gen": 0, "live": True, "ttl": 1}}),
    KEY,
)

MESSAGES: list[Message] = [
    Hello(PROTOCOL_VERSION, "c", ME, {ME: 3}, "0" * 64),
    Events([EVENT, EVENT]),
    Ping({ME: 1}),
    Pong({}),
    Pull(ME, 7),
    Error("identity", "no"),
    JoinCa("-----BEGIN CERTIFICATE-----"),
    Join("tok", ME, "n2", "127.0.0.1:7054", "c2ln"),
    JoinOk("pem", "key", "c", "name", {ME: {"name": "n1", "peer": "127.0.0.1:7053"}}),
    Snapshot({ME: 2}, [EVENT], [["zone x."]], False),
    Snapshot({}, [], [], True),
    Root("ab" * 32, {ME: 4}),
    Descend(3, ["", "0", "fe1"]),
    Nodes(3, {"": TreeNode(tuple(["0" * 32] * 16), None), "a7": TreeNode(None, {"k": "1" * 32})}),
    Fetch(3, ["zone x."]),
    Repair(3, True, ["zone x."], [EVENT]),
    Repair(0, False, [], []),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"type": "nope"},
        {"type": "ping"},
        {"type": "ping", "vv": {"x": 1}},
        {"type": "ping", "vv": {ME: -1}},
        {"type": "ping", "vv": {}, "extra": 1},
        {"type": "pull", "origin": ME, "after": True},
        {"type": "events", "events": ["!!!"]},
        {"type": "events", "events": ["AAAA"]},
        {"type": "hello", "version": 1, "cluster": "c", "node": "x", "vv": {}, "merkle_root": ""},
        {"type": "root", "root": "zz" * 32, "vv": {}},
        {"type": "snapshot", "vv": {}, "events": [], "keys": [["k"]], "last": True},
        {"type": "snapshot", "vv": {}, "events": [], "keys": [], "last": 1},
        {"type": "snapshot", "vv": {}, "events": [], "keys": {}, "last": True},
        {"type": "descend", "round": 1, "prefixes": ["g"]},
        {"type": "descend", "round": -1, "prefixes": []},
        {"type": "descend", "round": 1, "prefixes": [""] * 257},
        {"type": "nodes", "round": 1, "nodes": {"0": {"children": ["0" * 32] * 15}}},
        {"type": "nodes", "round": 1, "nodes": {"0": {"entries": {"k": "short"}}}},
        {"type": "nodes", "round": 1, "nodes": {"0": {"entries": {}, "children": []}}},
        {"type": "nodes", "round": 1, "nodes": {"x": {"entries": {}}}},
        {"type": "fetch", "round": 1, "keys": [""]},
        {"type": "fetch", "round": 1, "keys": ["k"] * 1001},
        {"type": "repair", "round": 1, "last": 1, "keys": [], "events": []},
        {"type": "repair", "round": 1, "last": True, "keys": [7], "events": []},
    ],
)
def test_malformed_messages(doc: object) -> None:
    with pytest.raises(MessageError):
        decode_message(canonical_json(doc))


def test_non_canonical_bytes_are_refused() -> None:
    with pytest.raises(MessageError):
        decode_message(b'{"vv": {}, "type": "ping"}')


def test_hello_rules() -> None:
    good = Hello(PROTOCOL_VERSION, "c", ME, {}, "0" * 64)
    assert check_hello(good, "c", ME) is None
    assert check_hello(good, "other", ME) == Error(
        "wrong_cluster", "this node belongs to another cluster"
    )
    other = node_id_of(nacl.signing.SigningKey.generate().verify_key)
    error = check_hello(good, "c", other)
    assert error is not None and error.code == "identity"
    old = Hello(0, "c", ME, {}, "0" * 64)
    error = check_hello(old, "c", ME)
    assert error is not None and error.code == "version"


def test_zero_entries_of_a_vector_are_dropped() -> None:
    """A missing entry means 0; vectors with and without 0 entries must compare equal, or
    two nodes would never agree to compare Merkle roots."""
    other = "b" * 64
    doc = {"type": "root", "root": "0" * 64, "vv": {ME: 3, other: 0}}
    message = decode_message(canonical_json(doc))
    assert isinstance(message, Root) and message.vv == {ME: 3}
    ping = decode_message(canonical_json({"type": "ping", "vv": {other: 0}}))
    assert isinstance(ping, Ping) and ping.vv == {}


def test_vv_missing() -> None:
    assert vv_missing({"a": 5, "b": 2}, {"a": 3, "b": 2, "c": 9}) == {"a": 3}
    assert vv_missing({"a": 1}, {}) == {"a": 0}
    assert vv_missing({}, {"a": 1}) == {}
