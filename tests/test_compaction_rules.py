"""The compaction rules without I/O: the floor, and when tombstones become stable."""

from hypothesis import example, given
from hypothesis import strategies as st

from protocol.compaction import MAX_CHECKPOINTS, Stability, covers, floor

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_floor_is_the_lowest_ack_and_a_missing_origin_counts_as_zero() -> None:
    assert floor([{A: 5, B: 2}, {A: 3, B: 7}]) == {A: 3, B: 2}
    assert floor([{A: 5, B: 2}, {A: 3}]) == {A: 3}
    assert floor([]) == {}


def test_a_tombstone_is_stable_only_once_every_member_has_what_it_made_before_applying_it() -> None:
    stability = Stability()
    # A's tombstone is A:1. Everyone has applied it; B and C had made 4 and 6 events by
    # the time they said so, and some of those may be concurrent with it.
    acks = {A: {A: 1, B: 0, C: 0}, B: {A: 1, B: 4}, C: {A: 1, C: 6}}
    assert stability.observe(acks) == {}
    # Everyone has B's 4 but only C:5 of C's 6: an event concurrent with A:1 may still come.
    acks = {A: {A: 1, B: 4, C: 5}, B: {A: 1, B: 4, C: 5}, C: {A: 1, B: 4, C: 6}}
    assert stability.observe(acks) == {}
    acks[A] = acks[B] = {A: 1, B: 4, C: 6}
    assert stability.observe(acks)[A] == 1


def test_a_member_that_stopped_counting_is_not_waited_for() -> None:
    stability = Stability()
    stability.observe({A: {A: 2}, B: {A: 2, B: 9}})
    assert stability.observe({A: {A: 2}}) == {A: 2}  # B went stale: only A counts


def test_checkpoints_stay_bounded_and_later_ones_still_become_stable() -> None:
    stability = Stability()
    for seq in range(1, 4 * MAX_CHECKPOINTS):
        # B lags one event behind its own latest on A's side, so nothing becomes stable.
        stability.observe({A: {A: seq, B: seq - 1}, B: {A: seq, B: seq}})
        assert len(stability.pending) <= MAX_CHECKPOINTS
    last = 4 * MAX_CHECKPOINTS
    stability.observe({A: {A: last, B: last}, B: {A: last, B: last}})
    assert stability.observe({A: {A: last, B: last}, B: {A: last, B: last}})[A] == last


vectors = st.dictionaries(st.sampled_from([A, B, C]), st.integers(0, 20), min_size=1)


@given(st.lists(st.fixed_dictionaries({A: vectors, B: vectors, C: vectors}), max_size=12))
@example(  # A's 1 is stable at round 3, B's at round 4, when A's ack went back to 0
    [
        {A: {A: 0, B: 1}, B: {A: 0, B: 1}, C: {A: 0, B: 1}},
        {A: {A: 1}, B: {A: 1}, C: {A: 1}},
        {A: {A: 1}, B: {A: 1}, C: {A: 1}},
        {A: {A: 0, B: 1}, B: {A: 0, B: 1}, C: {A: 0, B: 1}},
    ]
)
def test_the_stable_vector_never_passes_the_floor_and_never_shrinks(
    rounds: list[dict[str, dict[str, int]]],
) -> None:
    stability = Stability()
    previous: dict[str, int] = {}
    for acks in rounds:
        stable = stability.observe(acks)
        assert covers(stable, previous)
        previous = stable
    # Each origin became stable at most at some round's floor, not all at the same round:
    # acks may go back (a restored member), and what was stable stays stable.
    highest: dict[str, int] = {}
    for acks in rounds:
        for origin, seq in floor(acks.values()).items():
            highest[origin] = max(highest.get(origin, 0), seq)
    assert covers(highest, previous)
