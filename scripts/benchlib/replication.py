"""Replication figures: the bench's section for a cluster of peer53 nodes.

Nodes do not replicate yet, so nothing is measured here. When they do, this is where the bench
starts its own small cluster in ``workdir`` and returns figures such as events applied per
second, the time for a change to reach every node, and the DNS cache hit rate while
replication traffic flows. The report and the JSON file already show whatever this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripts.benchlib.workload import Workload


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str


def measure_replication(workdir: Path, workload: Workload) -> list[Figure]:
    """The replication figures; none until nodes replicate."""
    return []
