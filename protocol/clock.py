"""Hybrid logical clocks and version vectors.

An HLC stamp is one integer: wall-clock milliseconds shifted left 16 bits, plus a logical
counter in the low bits. It never goes backwards on one node, stays close to real time, and
orders a write after everything its writer had seen, even when wall clocks are skewed.
Version vectors record, per origin node, the highest sequence number applied without a gap.
"""

from __future__ import annotations

from collections.abc import Mapping

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def hlc_physical_ms(stamp: int) -> int:
    return stamp >> LOGICAL_BITS


def hlc_tick(last: int, wall_ms: int) -> int:
    """The stamp for a new local event."""
    candidate = wall_ms << LOGICAL_BITS
    return candidate if candidate > last else last + 1


def hlc_observe(last: int, remote: int, wall_ms: int) -> int:
    """Advance past a stamp seen on an incoming event."""
    return max(hlc_tick(last, wall_ms), remote + 1)


VersionVector = dict[str, int]


def vv_dominates(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """True when ``a`` has seen everything ``b`` has."""
    return all(a.get(origin, 0) >= seq for origin, seq in b.items())


def vv_merge(a: Mapping[str, int], b: Mapping[str, int]) -> VersionVector:
    merged = dict(a)
    for origin, seq in b.items():
        if seq > merged.get(origin, 0):
            merged[origin] = seq
    return merged


def vv_concurrent(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    return not vv_dominates(a, b) and not vv_dominates(b, a)


def vv_missing(mine: Mapping[str, int], theirs: Mapping[str, int]) -> dict[str, int]:
    """For each origin where I have more, the sequence number after which they lack events."""
    return {o: theirs.get(o, 0) for o, seq in mine.items() if seq > theirs.get(o, 0)}
