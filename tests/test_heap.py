"""The garbage collector is kept off large loaded data, and its full collections are timed."""

import gc
from collections.abc import Iterator

import pytest

from node import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector: the test process lives on."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_only_a_large_change_freezes_what_the_process_holds(unfrozen: None) -> None:
    gc.unfreeze()
    held = [[i] for i in range(heap.LARGE_CHANGE)]  # tracked objects, as loaded data is
    heap.settle(heap.LARGE_CHANGE - 1)
    assert heap.frozen_objects() == 0
    heap.settle(heap.LARGE_CHANGE)
    assert heap.frozen_objects() >= len(held)
    walked = gc.get_objects(generation=2)  # what a full collection would walk
    assert gc.is_tracked(held[0]) and not any(o is held[0] for o in walked)


def test_full_collections_are_counted_and_timed_young_ones_are_not() -> None:
    full = heap.FullCollections()
    full.observe("start", {"generation": 2})
    full.observe("stop", {"generation": 2})
    full.observe("start", {"generation": 0})
    full.observe("stop", {"generation": 0})
    assert full.count == 1
    assert 0 <= full.longest == full.seconds < 1
