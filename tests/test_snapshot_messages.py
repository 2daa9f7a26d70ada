"""Snapshots without I/O: chunking within the message limits, and what a reader refuses."""

import nacl.signing
import pytest

from protocol.events import EventBody, SignedEvent, decode_event, node_id_of, sign_event
from protocol.peer import MAX_KEYS_PER_MESSAGE, Snapshot, decode_message, encode_message
from protocol.snapshot import SnapshotError, SnapshotReader, snapshot_messages

KEY = nacl.signing.SigningKey.generate()
ME = node_id_of(KEY.verify_key)


def _event(seq: int, keys: int, cluster: str = "c") -> SignedEvent:
    writes = {f"setting k{seq}.{i}": {"value": i} for i in range(keys)}
    return sign_event(EventBody(cluster, ME, seq, {}, seq << 16, "test", writes), KEY)


def _holdings(*events: SignedEvent) -> list[tuple[SignedEvent, list[str]]]:
    return [(e, sorted(e.body.writes)) for e in events]


def test_chunks_respect_the_key_limit_and_split_a_large_event() -> None:
    big, small = _event(1, MAX_KEYS_PER_MESSAGE + 10), _event(2, 3)
    messages = list(snapshot_messages({ME: 2}, _holdings(big, small)))
    assert [m.last for m in messages] == [False, True]
    assert all(sum(map(len, m.keys)) <= MAX_KEYS_PER_MESSAGE for m in messages)
    assert messages[1].events == [big, small]  # the rest of big's keys, then small
    reader = SnapshotReader("c")
    for message in messages:
        wire = decode_message(encode_message(message))
        assert isinstance(wire, Snapshot)
        reader.add(wire)
    assert reader.vv == {ME: 2}
    assert set(reader.entries) == set(big.body.writes) | set(small.body.writes)
    assert reader.entries["setting k2.0"] == small


def test_an_empty_state_is_one_last_message() -> None:
    assert list(snapshot_messages({}, [])) == [Snapshot({}, [], [], True)]


def _refused(message: Snapshot, match: str) -> None:
    with pytest.raises(SnapshotError, match=match):
        SnapshotReader("c").add(message)


def test_the_reader_refuses_what_it_cannot_trust() -> None:
    event = _event(1, 2)
    keys = [sorted(event.body.writes)]
    _refused(Snapshot({ME: 1}, [_event(1, 2, "other")], keys, True), "another cluster")
    _refused(Snapshot({ME: 0}, [event], keys, True), "beyond its own version vector")
    _refused(Snapshot({ME: 1}, [event], [["setting nope"]], True), "it did not")
    _refused(Snapshot({ME: 1}, [event], [[]], True), "holds no key")
    _refused(Snapshot({ME: 1}, [event, event], keys * 2, True), "twice")
    wire = event.to_wire()
    forged = decode_event(wire[:10] + bytes([wire[10] ^ 1]) + wire[11:], verify=False)
    _refused(Snapshot({ME: 1}, [forged], keys, True), "forged")
    reader = SnapshotReader("c")
    reader.add(Snapshot({ME: 1}, [], [], False))
    with pytest.raises(SnapshotError, match="changed"):
        reader.add(Snapshot({ME: 2}, [], [], True))


def test_a_changed_write_does_not_pass_as_the_signed_one() -> None:
    event = _event(1, 1)
    tampered = decode_event(event.to_wire().replace(b'"value":0', b'"value":1'), verify=False)
    _refused(Snapshot({ME: 1}, [tampered], [sorted(event.body.writes)], True), "forged")
