from protocol.clock import (
    hlc_observe,
    hlc_physical_ms,
    hlc_tick,
    vv_concurrent,
    vv_dominates,
    vv_merge,
)


def test_hlc_follows_wall_clock_and_never_goes_back() -> None:
    a = hlc_tick(0, 1000)
    assert hlc_physical_ms(a) == 1000
    b = hlc_tick(a, 900)  # wall clock stepped back
    assert b > a
    assert hlc_physical_ms(b) == 1000


def test_hlc_observe_orders_after_remote_stamp() -> None:
    remote = hlc_tick(0, 5000)
    local = hlc_observe(hlc_tick(0, 1000), remote, 1000)  # our clock is behind
    assert local > remote


def test_version_vectors() -> None:
    a = {"x": 2, "y": 1}
    b = {"x": 1}
    assert vv_dominates(a, b) and not vv_dominates(b, a)
    assert not vv_concurrent(a, b)
    c = {"y": 3}
    assert vv_concurrent(a, c)
    assert vv_merge(a, c) == {"x": 2, "y": 3}
