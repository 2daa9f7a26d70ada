import nacl.signing
import pytest

from protocol.canonical import CanonicalError, canonical_json, parse_canonical
from protocol.events import EventBody, EventError, Group, decode_event, node_id_of, sign_event
from protocol.peer import MessageError, decode_message


def _body(key: nacl.signing.SigningKey, **over: object) -> EventBody:
    fields: dict[str, object] = {
        "cluster": "c1",
        "origin": node_id_of(key.verify_key),
        "seq": 1,
        "vv": {},
        "hlc": 1 << 16,
        "kind": "test",
        "writes": {"zone example.": {"gen": 0, "live": True, "ttl": 60}},
    }
    fields.update(over)
    return EventBody(**fields)  # type: ignore[arg-type]


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(CanonicalError, match="floats"):
        canonical_json({"x": 1.5})


def test_parse_canonical_refuses_non_canonical_bytes() -> None:
    with pytest.raises(CanonicalError, match="canonical"):
        parse_canonical(b'{"b":1, "a":2}')


def test_round_trip_keeps_bytes_and_id() -> None:
    key = nacl.signing.SigningKey.generate()
    event = sign_event(_body(key, group=Group("g", 1, 2)), key)
    decoded = decode_event(event.to_wire())
    assert decoded.body == event.body
    assert decoded.body_bytes == event.body_bytes
    assert decoded.id == event.id and len(event.id) == 64


def test_tampered_body_fails_signature() -> None:
    key = nacl.signing.SigningKey.generate()
    wire = bytearray(sign_event(_body(key), key).to_wire())
    wire[-3] = ord("9") if wire[-3] != ord("9") else ord("8")
    with pytest.raises(EventError):
        decode_event(bytes(wire))


def test_signature_by_another_key_fails() -> None:
    key, other = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    event = sign_event(_body(key), key)
    forged = other.sign(b"peer53-event-v1\x00" + event.body_bytes).signature + event.body_bytes
    with pytest.raises(EventError, match="signature"):
        decode_event(forged)


def test_signing_for_another_origin_is_refused() -> None:
    key, other = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    with pytest.raises(EventError, match="origin"):
        sign_event(_body(other), key)


@pytest.mark.parametrize(
    "wire",
    [b"", b"x" * 64, b"x" * 64 + b"[]", b"x" * 64 + b'{"a":1}', b"x" * 64 + b"\xff"],
)
def test_garbage_is_an_event_error(wire: bytes) -> None:
    with pytest.raises(EventError):
        decode_event(wire)


def test_origin_with_trailing_newline_is_refused() -> None:
    key = nacl.signing.SigningKey.generate()
    body = _body(key).to_json()
    body["origin"] = body["origin"] + "\n"
    body_bytes = canonical_json(body)
    wire = key.sign(b"peer53-event-v1\x00" + body_bytes).signature + body_bytes
    with pytest.raises(EventError, match="origin"):
        decode_event(wire)


def test_lone_surrogate_is_an_event_error() -> None:
    with pytest.raises(EventError):
        decode_event(b"x" * 64 + b'{"a":"\\ud800"}')


def test_boolean_group_index_is_refused() -> None:
    key = nacl.signing.SigningKey.generate()
    body = _body(key).to_json()
    body["group"] = {"id": "g", "index": True, "size": 1}
    body_bytes = canonical_json(body)
    wire = key.sign(b"peer53-event-v1\x00" + body_bytes).signature + body_bytes
    with pytest.raises(EventError, match="group"):
        decode_event(wire)


@pytest.mark.parametrize("text", [b'{"x":1.5}', b'{"x":1e3}', b"[NaN]", b"[-Infinity]"])
def test_parse_canonical_refuses_floats_and_constants(text: bytes) -> None:
    with pytest.raises(CanonicalError, match="not allowed"):
        parse_canonical(text)


@pytest.mark.parametrize(
    "text",
    [b'{"a":1,"a":2}', b'{"a":-0}', b'{"a":"\\u00e9"}', b'["\\ud800"]', b'{"a":01}', b" 1"],
)
def test_parse_canonical_refuses_what_does_not_encode_back_to_the_same_bytes(
    text: bytes,
) -> None:
    with pytest.raises(CanonicalError):
        parse_canonical(text)


def test_integers_longer_than_any_accepted_are_refused_as_not_canonical() -> None:
    """Python itself refuses 4300+ digits with a bare ValueError; that must not escape."""
    assert parse_canonical(b"[-9223372036854775808]") == [-(2**63)]
    for digits in (21, 5000):
        with pytest.raises(CanonicalError, match="at most 20"):
            parse_canonical(b"[" + b"1" * digits + b"]")
        with pytest.raises(MessageError, match="at most 20"):
            decode_message(b'{"after":' + b"1" * digits + b',"origin":"x","type":"pull"}')


def test_parse_canonical_keeps_what_is_canonical() -> None:
    text = '{"a":[1,-2,true,null,"é\\\\"],"b":{"c":""}}'.encode()
    assert canonical_json(parse_canonical(text)) == text
