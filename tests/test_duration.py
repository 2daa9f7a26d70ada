from __future__ import annotations

import pytest

from protocol.duration import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("007m", 420),
    ],
)
def test_accepted_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "s", "1w", "1H", "-5", "+5", "1.5h", " 5", "5 ", "1h30m", "٣", "1hh"]
)
def test_rejected_durations_name_the_grammar(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*s, m, h or d"):
        parse_duration(text)
