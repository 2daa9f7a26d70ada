"""The cut: which events of a departed member apply, wait or are refused (sans-IO)."""

from hypothesis import given
from hypothesis import strategies as st

from protocol.membership import Verdict, cut_key, departed_event

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_events_up_to_the_highest_report_apply() -> None:
    reports = {A: 4, B: 7}
    assert departed_event(1, reports, [A, B, C]) is Verdict.APPLY
    assert departed_event(7, reports, [A, B, C]) is Verdict.APPLY


def test_events_above_it_wait_for_missing_reports_then_are_refused() -> None:
    assert departed_event(8, {A: 4, B: 7}, [A, B, C]) is Verdict.WAIT
    assert departed_event(8, {A: 4, B: 7, C: 5}, [A, B, C]) is Verdict.REFUSE
    assert departed_event(8, {A: 4, B: 7, C: 9}, [A, B, C]) is Verdict.APPLY


def test_no_report_yet_means_wait() -> None:
    assert departed_event(1, {}, [A]) is Verdict.WAIT
    assert departed_event(1, {}, []) is Verdict.REFUSE


def test_cut_key() -> None:
    assert cut_key(A, B) == f"cut {A} {B}"


@given(
    st.dictionaries(st.sampled_from([A, B, C]), st.integers(0, 50)),
    st.integers(1, 60),
)
def test_the_verdict_never_goes_back(reports: dict[str, int], seq: int) -> None:
    """More reports never turn an APPLY into anything else, nor a REFUSE into an APPLY."""
    before = departed_event(seq, reports, [A, B, C])
    for reporter, value in {A: 0, B: 0, C: 0}.items():
        more = {reporter: value, **reports}
        after = departed_event(seq, more, [A, B, C])
        if before is Verdict.APPLY:
            assert after is Verdict.APPLY
        if before is Verdict.REFUSE:
            assert after is Verdict.REFUSE
