"""Durations as operators type them: ``90``, ``90s``, ``15m``, ``12h``, ``7d``.

One grammar, ``[0-9]+[smhd]?`` with a bare number meaning seconds, shared by the command
line and the node so that an invite TTL means the same wherever it is written.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``text``; ValueError saying what is accepted otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a whole number with an optional unit "
            "s, m, h or d (for example 90, 90s, 15m, 12h, 7d)"
        )
    number, unit = match.groups()
    return int(number) * _UNIT_SECONDS[unit]
