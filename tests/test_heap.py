"""The garbage collector is kept off large loaded data, and its full collections are timed."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from node import heap
from node.bootstrap import initialise
from node.config import NodeConfig
from node.service import NodeState
from protocol.statekeys import setting_key


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


def test_a_node_that_commits_a_large_change_freezes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    """Every commit counts: a peer's events and snapshots as well as local writes."""
    monkeypatch.setattr(heap, "FREEZER", heap.Freezer())
    monkeypatch.setattr(heap, "settle", heap.FREEZER.settle)
    initialise(tmp_path / "n", NodeConfig(name="n1"), "t")
    state = NodeState.open(tmp_path / "n")
    try:
        gc.unfreeze()
        writes = {setting_key(f"k{i}"): {"value": i} for i in range(heap.LARGE_CHANGE)}

        async def write() -> None:
            await state.write("test", lambda: writes)

        trio.run(write)
        assert heap.frozen_objects() > heap.LARGE_CHANGE  # each register is objects
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
