"""Which events of a member that left or was removed still count: the cut.

A removed node's own timestamps cannot be trusted to say which of its events came before
its removal, so the members decide. Each active member, when it applies the change that
ends a membership (status ``left`` or ``removed``), reports how many of that node's
events it had seen then (applied, or logged without a gap after a snapshot that lacked
them): the register ``cut NODE REPORTER`` = {"seq": n}, written only by REPORTER. The
node that removes writes its report in the same event; a node that leaves reports its own
leave event's sequence number. The cut is the highest report.

Every member applies the departed node's events up to the cut, and no others. An event
above the cut waits while some active member has not reported yet (a later report may
raise the cut); once every active member has reported it is refused for good. A member
that has not written its report yet judges by the report it will write. Since a
member applies nothing of the departed node above the cut after reporting, and the cut is
at least what any member had applied before, all members end with the same events.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class Verdict(enum.Enum):
    APPLY = "apply"
    WAIT = "wait"
    REFUSE = "refuse"


def cut_key(member: str, reporter: str) -> str:
    return f"cut {member} {reporter}"


def departed_event(seq: int, reports: Mapping[str, int], reporters: Iterable[str]) -> Verdict:
    """The fate of event ``seq`` of a departed member, given the reports so far (reporter
    -> seq) and the active members that must report."""
    if seq <= max(reports.values(), default=0):
        return Verdict.APPLY
    if all(reporter in reports for reporter in reporters):
        return Verdict.REFUSE
    return Verdict.WAIT
