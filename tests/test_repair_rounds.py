"""Anti-entropy rounds between two in-memory trees, through the real message codec."""

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.merkle import MerkleTree
from protocol.peer import Descend, Fetch, Nodes, decode_message, encode_message
from protocol.repair import RepairRound, describe


def _digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:16]


def _round(driver: MerkleTree, responder: MerkleTree) -> tuple[RepairRound, set[str], int]:
    """Run one round to its end; (round, pushed keys, bytes exchanged)."""
    state = RepairRound(1)
    outbox = state.begin()
    pushed: set[str] = set()
    size = 0
    guard = 0
    while outbox:
        guard += 1
        assert guard < 1000
        message = decode_message(encode_message(outbox.pop(0)))
        size += len(encode_message(message))
        if isinstance(message, Descend):
            answer = Nodes(message.round, {p: describe(responder, p) for p in message.prefixes})
            answer = decode_message(encode_message(answer))
            assert isinstance(answer, Nodes)
            size += len(encode_message(answer))
            more, diff = state.on_nodes(driver, answer.nodes)
            outbox.extend([*more, *state.fetch(diff.fetch)])
            pushed |= diff.push
        else:
            assert isinstance(message, Fetch)
            state.on_fetched()
    assert state.done
    return state, pushed, size


def _pair(n: int) -> tuple[MerkleTree, MerkleTree, list[str]]:
    a, b = MerkleTree(), MerkleTree()
    keys = [f"rr example. 0 host{i}.example. A {i:032x}" for i in range(n)]
    for key in keys:
        a.set(key, _digest(key))
        b.set(key, _digest(key))
    return a, b, keys


def test_equal_trees_need_no_round() -> None:
    a, b, _ = _pair(500)
    assert a.root() == b.root()


def test_one_difference_among_many_costs_log_n_hashes() -> None:
    a, b, keys = _pair(20_000)
    b.set(keys[4321], _digest("newer"))
    state, pushed, size = _round(a, b)
    assert state.differing == {keys[4321]}
    assert pushed == {keys[4321]} and state.fetched == {keys[4321]}
    assert state.round_trips <= 6
    assert size < 8_000  # a transfer of the keys would be megabytes


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_a_round_finds_exactly_the_differing_keys(data: st.DataObject) -> None:
    a, b, keys = _pair(data.draw(st.integers(0, 3000)))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    expected: set[str] = set()
    for _ in range(data.draw(st.integers(0, 40))):
        what = rng.choice(["change", "drop_a", "drop_b", "extra_a", "extra_b"])
        if what.startswith("extra"):
            key = f"token {rng.getrandbits(64):016x}"
            (a if what == "extra_a" else b).set(key, _digest(key))
        elif keys:
            key = rng.choice(keys)
            if what == "change":
                b.set(key, _digest(f"{key}{rng.random()}"))
            else:
                (a if what == "drop_a" else b).set(key, None)
        else:
            continue
        expected.add(key)
    expected = {k for k in expected if a.get(k) != b.get(k)}
    if a.root() == b.root():
        assert not expected
        return
    state, pushed, _ = _round(a, b)
    assert state.differing == expected
    assert pushed == {k for k in expected if a.get(k) is not None}
    assert state.fetched == {k for k in expected if b.get(k) is not None}


def test_a_push_without_a_fetch_still_waits_for_an_answer() -> None:
    state = RepairRound(7)
    state.begin()
    _, diff = state.on_nodes(MerkleTree(), {"": describe(MerkleTree(), "")})
    assert not diff.push and not diff.fetch
    assert state.fetch([]) == []
    barrier = state.fetch([], barrier=True)
    assert barrier == [Fetch(7, [])] and not state.done
    state.on_fetched()
    assert state.done
