"""What waking up costs a node: peers' events applied one at a time, back to back and
each after a sleep.

In a cluster taking writes at a steady rate, every node sleeps between events: each write
reaches it on its own, and on a shared host other processes run meanwhile. When it wakes,
the data and code its work needs are no longer in the CPU's caches, and reading them again
costs CPU time. This measures that cost on the host the bench runs on, in this process,
with the real apply path: events of one A record at a fresh name each (what the
propagation run writes), made on one node and applied to a copy of it as they would be from
a peer, in alternating blocks: back to back, then each after a sleep. Only the apply is
timed, in CPU time, so the sleep itself counts for nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

from node.bootstrap import initialise
from node.config import NodeConfig
from node.service import NodeState
from protocol.events import SignedEvent
from scripts.benchlib.replication import PLAN, Figure

ORIGIN = dns.name.from_text("wakeup.test.")
EVENTS = 400
"""Events applied in each way (fewer when the propagation run has fewer writes)."""
BLOCK = 20
"""Events per block; the blocks alternate, so that drift of the host touches both alike."""
SLEEP = 0.01
"""Seconds asleep before each event of the second kind: about what a node of a 5-node
cluster sleeps between writes at 100 writes/s."""


async def _make_events(data_dir: Path, copy: Path, count: int) -> list[SignedEvent]:
    """A node with an empty zone copied to ``copy``, then ``count`` writes on it."""
    state = NodeState.open(data_dir)
    ns = [dns.name.from_text("ns1", ORIGIN)]
    await state.write("zone.create", lambda: state.editor.create_zone(ORIGIN, ns, 3600, 1))
    state.close()
    shutil.copytree(data_dir, copy)
    state = NodeState.open(data_dir)
    events = []
    for index in range(count):
        name = dns.name.from_text(f"w{index}", ORIGIN)
        rrset = dns.rrset.from_text(name, 60, dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.1")
        change = {(name, dns.rdatatype.A): rrset}
        events += await state.write(
            "rrset.put", partial(state.editor.change_rrsets, ORIGIN, change), inline=True
        )
    state.close()
    return events


async def _apply(data_dir: Path, events: list[SignedEvent]) -> tuple[float, float]:
    """CPU seconds per event applied back to back, and after a sleep each."""
    state = NodeState.open(data_dir)
    spent, counted = [0.0, 0.0], [0, 0]
    block = max(1, min(BLOCK, len(events) // 2))
    try:
        for start in range(0, len(events), block):
            asleep = (start // block) % 2
            for event in events[start : start + block]:
                if asleep:
                    time.sleep(SLEEP)  # blocking: the process is idle, as a waiting node is
                began = time.process_time()
                await state.apply_remote([event])
                spent[asleep] += time.process_time() - began
                counted[asleep] += 1
    finally:
        state.close()
    return spent[0] / max(counted[0], 1), spent[1] / max(counted[1], 1)


def measure(workdir: Path, progress: Callable[[str], None], events: int = EVENTS) -> list[Figure]:
    origin_dir, copy_dir = workdir / "wakeup-origin", workdir / "wakeup-copy"
    initialise(origin_dir, NodeConfig(name="wakeup"), "bench")
    progress(f"wakeup: {events} events applied back to back, {events} each after a sleep")
    made = trio.run(_make_events, origin_dir, copy_dir, 2 * events)
    back_to_back, after_sleep = trio.run(_apply, copy_dir, made)
    label = "one peer's event applied in this process"
    return [
        Figure(
            "wakeup.back_to_back",
            f"{label}, back to back, CPU per event",
            round(back_to_back * 1e6),
            "µs",
        ),
        Figure(
            "wakeup.after_sleep",
            f"{label}, each after {SLEEP * 1000:g} ms asleep, CPU per event",
            round(after_sleep * 1e6),
            "µs",
        ),
    ]


def measure_wakeup(workdir: Path, progress: Callable[[str], None]) -> list[Figure]:
    """With the propagation run, which it explains, and no longer than it; not without."""
    writes = PLAN.get().writes
    return measure(workdir, progress, min(EVENTS, writes)) if writes else []
