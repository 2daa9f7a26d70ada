"""Keeping Python's cyclic garbage collector away from the served data.

Theory of operation: a full collection walks every object the collector tracks, and a node
holds several per record (its register, owner name, rdata and RRset). With 100,000 records
that is about a million objects and half a second during which the node answers nothing,
and a full collection comes whenever the long-lived objects have grown by a quarter. That
data forms no reference cycles (what a write replaces is freed by reference counting), so
once loaded it is *frozen*: moved out of the collector's sight for good. The node freezes
what it holds once it has loaded its data at start, and again after each change of at
least ``LARGE_CHANGE`` registers (imports, snapshots). The objects of smaller changes are
collected as usual.

The cost: cyclic garbage that is alive at the moment of a freeze is never collected. That
is a handful of objects per freeze, and freezes are rare.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

LARGE_CHANGE = 10_000
"""Registers changed by one commit from which the node freezes what it holds."""


@dataclass
class FullCollections:
    """The full collections this process ran: each one is a pause of the whole node."""

    count: int = 0
    seconds: float = 0.0
    longest: float = 0.0
    _started: float = 0.0

    def observe(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.count += 1
        self.seconds += took
        self.longest = max(self.longest, took)


FULL_COLLECTIONS = FullCollections()


def start_serving() -> None:
    """Collect what loading left behind, freeze the rest, and time full collections."""
    gc.collect()
    gc.freeze()
    if FULL_COLLECTIONS.observe not in gc.callbacks:
        gc.callbacks.append(FULL_COLLECTIONS.observe)


def settle(changed: int) -> None:
    """After a commit of ``changed`` registers: freeze what a large change loaded."""
    if changed >= LARGE_CHANGE:
        gc.freeze()


def frozen_objects() -> int:
    return gc.get_freeze_count()
