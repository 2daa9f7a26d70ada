"""Keeping Python's cyclic garbage collector away from the served data.

Theory of operation: a full collection walks every object the collector tracks, and a node
holds several per record (its register, owner name, rdata and RRset). With 100,000 records
that is about a million objects and half a second during which the node answers nothing,
and a full collection comes whenever the long-lived objects have grown by a quarter. That
data forms no reference cycles (what a write replaces is freed by reference counting), so
once loaded it is *frozen*: moved out of the collector's sight for good. The node freezes
what it holds when it starts serving, and again each time the changes it committed since
the last freeze reach ``LARGE_CHANGE`` registers: at once after an import or a snapshot,
in time under a stream of small writes. A full collection then walks only what was made
since the last freeze.

The cost: whatever is cyclic garbage at the moment of a freeze, or becomes part of a cycle
later while frozen, is never collected. Young garbage is collected just before each freeze;
what reached the oldest generation since the last full collection is not, so as not to
pause the node for it. With writes flowing, a freeze comes every ``LARGE_CHANGE``
registers, which also bounds what a full collection walks in between; the resident size
is the thing to watch if something long-lived starts forming cycles.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

LARGE_CHANGE = 1_000
"""Registers committed between two freezes."""


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


class Freezer:
    """Freezes once enough registers were committed since it last did."""

    def __init__(self) -> None:
        self.changed = 0  # registers committed since the last freeze

    def settle(self, changed: int) -> None:
        """After a commit of ``changed`` registers."""
        self.changed += changed
        if self.changed >= LARGE_CHANGE:
            self.freeze()

    def freeze(self) -> None:
        gc.collect(1)
        gc.freeze()
        self.changed = 0


FREEZER = Freezer()


def settle(changed: int) -> None:
    """After a commit of ``changed`` registers (see ``Freezer``)."""
    FREEZER.settle(changed)


def start_serving() -> None:
    """Collect what loading left behind, freeze the rest, and time full collections."""
    gc.collect()
    FREEZER.freeze()
    if FULL_COLLECTIONS.observe not in gc.callbacks:
        gc.callbacks.append(FULL_COLLECTIONS.observe)


def frozen_objects() -> int:
    return gc.get_freeze_count()
