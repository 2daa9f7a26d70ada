"""The garbage collector is kept off large loaded data, and its full collections are timed."""

import gc
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest
import trio

from node import heap
from node.bootstrap import initialise
from node.config import NodeConfig
from node.service import NodeState
from protocol.canonical import JSONValue
from protocol.events import EventBody, node_id_of, sign_event
from protocol.statekeys import member_key, setting_key


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector: the test process lives on."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_what_is_held_is_frozen_once_enough_changes_were_committed(unfrozen: None) -> None:
    gc.unfreeze()
    freezer = heap.Freezer()
    held = [[i] for i in range(heap.LARGE_CHANGE)]  # tracked objects, as loaded data is
    freezer.settle(heap.LARGE_CHANGE - 1)
    assert heap.frozen_objects() == 0
    freezer.settle(1)  # small changes add up
    assert heap.frozen_objects() >= len(held)
    walked = gc.get_objects(generation=2)  # what a full collection would walk
    assert gc.is_tracked(held[0]) and not any(o is held[0] for o in walked)
    assert freezer.changed == 0
    freezer.settle(heap.LARGE_CHANGE - 1)  # counting starts again from the freeze
    assert freezer.changed == heap.LARGE_CHANGE - 1


def test_every_commit_counts_and_a_large_one_freezes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    """Local writes, inline or in a worker thread, and a peer's events (whose commit path
    repairs and snapshots take too) all count."""
    freezer = heap.Freezer()
    monkeypatch.setattr(heap, "FREEZER", freezer)
    initialise(tmp_path / "n", NodeConfig(name="n1"), "t")
    state = NodeState.open(tmp_path / "n")
    key = nacl.signing.SigningKey.generate()
    peer = node_id_of(key.verify_key)
    state.write_now("test", {member_key(peer): {"name": "p", "peer": "", "status": "active"}})

    def settings(prefix: str, count: int) -> dict[str, JSONValue]:
        return {setting_key(f"{prefix}{i}"): {"value": i} for i in range(count)}

    async def commits() -> None:
        await state.write("test", lambda: settings("a", 3), inline=True)
        assert freezer.changed == 3 and heap.frozen_objects() == 0
        vv = {**state.replica.vv, peer: 0}
        body = EventBody(state.identity.cluster_id, peer, 1, vv, 1 << 16, "t", settings("b", 4))
        await state.apply_remote([sign_event(body, key)])
        assert freezer.changed == 7 and heap.frozen_objects() == 0
        await state.write("test", lambda: settings("c", heap.LARGE_CHANGE))
        assert freezer.changed == 0
        assert heap.frozen_objects() > heap.LARGE_CHANGE  # each register is objects

    try:
        gc.unfreeze()
        trio.run(commits)
    finally:
        state.close()


def test_full_collections_are_counted_and_timed_young_ones_are_not() -> None:
    full = heap.FullCollections()
    full.observe("start", {"generation": 2})
    full.observe("stop", {"generation": 2})
    full.observe("start", {"generation": 0})
    full.observe("stop", {"generation": 0})
    assert full.count == 1
    assert 0 <= full.longest == full.seconds < 1
