"""Anti-entropy figures: what one repair round costs between two nodes whose states differ
in K of N keys.

Measured in this process with the real Merkle tree, repair round and peer-message code and
no network: two trees hold the same N record registers (as a zone import writes them), K
keys are made to differ, and one round runs between them as it would on a link. Every
message is framed, encoded and decoded; the answering side answers with ``describe``; the
driver pushes what it holds and fetches what it lacks, as ``node.replication.repair``
does; every key pushed or fetched travels as one signed single-record event. A receiver
takes the sender's register when it lacks the key or the sender's wins, and otherwise
pushes its own back. The round must leave both roots equal, or the bench fails.

What the event's register is, and which register wins, are stood in for: the sender's
entry digest travels beside the message (the real event carries it), and the newer write
made here wins (ties broken by digest), so both sides pick the same winner as the register
rule would. Building the trees is not timed; a round's time is both sides' CPU.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import nacl.signing

from protocol.clock import LOGICAL_BITS
from protocol.events import EventBody, SignedEvent, node_id_of, sign_event
from protocol.frames import FrameDecoder, encode_frame
from protocol.merkle import MerkleTree, entry_digest
from protocol.peer import (
    MAX_EVENTS_PER_MESSAGE,
    MAX_KEYS_PER_MESSAGE,
    Descend,
    Fetch,
    Message,
    Nodes,
    Repair,
    Root,
    decode_message,
    encode_message,
)
from protocol.repair import RepairRound, describe
from protocol.statekeys import rr_key, serial_key, ttl_key
from scripts.benchlib.replication import Figure

DIFFERENCES = (1, 10, 1_000)
ZONE = "bench.test."
HLC = 1_750_000_000_000 << LOGICAL_BITS  # a stamp of 2025
WRITES_PER_EVENT = 2000  # as a zone import chunks its writes
PER_MESSAGE = min(MAX_KEYS_PER_MESSAGE, MAX_EVENTS_PER_MESSAGE)
MEMBERS = [
    nacl.signing.SigningKey(hashlib.sha256(f"bench member {n}".encode()).digest()) for n in range(3)
]
ORIGIN = node_id_of(MEMBERS[0].verify_key)
CLUSTER = hashlib.sha256(b"bench cluster").hexdigest()[:32]
VV = {node_id_of(member.verify_key): 1_000_000 + n for n, member in enumerate(MEMBERS)}
"""Every member past its millionth event: the vector ROOT carries."""
SECONDS_PER_KEY = 60e-6
"""Rough, for the bench's estimate: building both trees and the rounds, per key."""
EQUAL_ROOTS = "repair.equal_roots.bytes"
DRIVER, RESPONDER = 0, 1


@dataclass(frozen=True)
class RepairPlan:
    sizes: tuple[int, ...] = (100_000, 1_000_000)
    """Keys in each tree; every size gets a round for each count in ``DIFFERENCES``."""
    seed: int = 53

    def estimated_seconds(self) -> float:
        return sum(self.sizes) * SECONDS_PER_KEY


DEFAULT = RepairPlan()
NONE = RepairPlan(sizes=())
PLAN: ContextVar[RepairPlan] = ContextVar("repair_plan", default=DEFAULT)
"""What ``measure_repair`` measures; the bench's command line sets it."""


def _record(index: int) -> tuple[str, str]:
    """The index-th host's A record: its state key and its value as stored."""
    address = 0x0A000000 + index
    # An A record's canonical wire form is its four address bytes.
    rdata = hashlib.sha256(address.to_bytes(4, "big")).hexdigest()[:32]
    key = rr_key(ZONE, 0, f"host{index}.{ZONE}", "A", rdata)
    text = f"10.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
    return key, f'{{"rdata":"{text}"}}'  # its canonical JSON, as the node stores it


def _written(value: str, label: str, seq: int) -> bytes:
    """The entry digest of ``value`` as written by this origin's event number ``seq``."""
    event_id = hashlib.sha256(f"{label} {seq}".encode()).hexdigest()
    return entry_digest(event_id, HLC + seq, ORIGIN, seq, value)


def _repair_event() -> SignedEvent:
    """What one repaired key costs on the wire: a signed single-record write."""
    owner = f"host0.{ZONE}"
    writes = {
        rr_key(ZONE, 0, owner, "A", "0" * 32): {"rdata": "10.0.0.0"},
        ttl_key(ZONE, 0, owner, "A"): {"ttl": 300},
        serial_key(ZONE, 0, ORIGIN): {"base": 2026010100, "count": 1_000},
    }
    body = EventBody(CLUSTER, ORIGIN, VV[ORIGIN], dict(VV), HLC, "rrset.put", writes)
    return sign_event(body, MEMBERS[0])


@dataclass(frozen=True)
class Outcome:
    seconds: float
    bytes: int
    """Every message both ways, framed, the ROOT offer included."""
    round_trips: float
    """One-way trips after the ROOT offer until both sides agree, halved: a push that needs
    no answer counts half."""
    protocol_round_trips: int
    """What the round itself counts (``RepairRound.round_trips``)."""


@dataclass(frozen=True)
class _Delivery:
    leg: int
    """One-way trips after the ROOT offer at which this message arrives."""
    frame: bytes
    registers: Mapping[str, bytes]
    """For a REPAIR: the entry digest each of its keys gets from its event."""


class _Link:
    """Both ends of one peer link in one process; each side reads its messages in order."""

    def __init__(self, trees: tuple[MerkleTree, MerkleTree], newer: set[bytes]) -> None:
        self.trees = trees
        self.newer = newer
        self.event = _repair_event()
        self.inboxes: tuple[deque[_Delivery], deque[_Delivery]] = (deque(), deque())
        self.decoders = (FrameDecoder(), FrameDecoder())
        self.round: RepairRound | None = None
        self.bytes = 0
        self.legs = 0

    def run(self) -> None:
        """From the responder's ROOT offer until neither side has anything to send."""
        self._send(DRIVER, 0, Root(self.trees[RESPONDER].root(), dict(VV)))
        while any(self.inboxes):
            for side, inbox in enumerate(self.inboxes):
                while inbox:
                    delivery = inbox.popleft()
                    self.legs = max(self.legs, delivery.leg)
                    (payload,) = self.decoders[side].feed(delivery.frame)
                    message = decode_message(payload)
                    self._handle(side, delivery.leg + 1, message, delivery.registers)

    def _send(
        self, to: int, leg: int, message: Message, registers: Mapping[str, bytes] | None = None
    ) -> None:
        frame = encode_frame(encode_message(message))
        self.bytes += len(frame)
        self.inboxes[to].append(_Delivery(leg, frame, registers or {}))

    def _driven(self) -> RepairRound:
        if self.round is None:
            raise RuntimeError("repair bench: an answer arrived before the round began")
        return self.round

    def _handle(
        self, side: int, leg: int, message: Message, registers: Mapping[str, bytes]
    ) -> None:
        tree, other = self.trees[side], 1 - side
        match message:
            case Root():
                if message.vv == VV and message.root != tree.root():
                    self.round = RepairRound(1)
                    for request in self.round.begin():
                        self._send(other, leg, request)
            case Descend():
                answers = {prefix: describe(tree, prefix) for prefix in message.prefixes}
                self._send(other, leg, Nodes(message.round, answers))
            case Nodes():
                driven = self._driven()
                requests, diff = driven.on_nodes(tree, message.nodes)
                for request in [*requests, *driven.fetch(diff.fetch - diff.push)]:
                    self._send(other, leg, request)
                self._pack(other, leg, 0, diff.push)
            case Fetch():
                self._pack(other, leg, message.round, message.keys)
            case Repair():
                self._pack(other, leg, 0, self._apply(tree, message.keys, registers))
                if message.round and message.last:
                    self._driven().on_fetched()
            case _:
                raise RuntimeError(f"repair bench: unexpected {type(message).__name__}")

    def _pack(self, to: int, leg: int, round_id: int, keys: Iterable[str]) -> None:
        """REPAIR messages with the sender's event for each key it holds; an answer to a
        FETCH ends with one whose ``last`` is set, empty if need be."""
        tree = self.trees[1 - to]
        held: dict[str, bytes] = {}
        for key in sorted(keys):
            digest = tree.get(key)
            if digest is not None:
                held[key] = digest
        keys_held = list(held)
        chunks = [keys_held[i : i + PER_MESSAGE] for i in range(0, len(keys_held), PER_MESSAGE)]
        if round_id and not chunks:
            chunks = [[]]
        for number, chunk in enumerate(chunks, start=1):
            last = bool(round_id) and number == len(chunks)
            message = Repair(round_id, last, chunk, [self.event] * len(chunk))
            self._send(to, leg, message, {key: held[key] for key in chunk})

    def _wins(self, digest: bytes, other: bytes) -> bool:
        return (digest in self.newer, digest) > (other in self.newer, other)

    def _apply(
        self, tree: MerkleTree, keys: list[str], registers: Mapping[str, bytes]
    ) -> list[str]:
        """Takes the sender's registers that win; the keys whose own register wins."""
        back = []
        for key in keys:
            own, theirs = tree.get(key), registers[key]
            if own is None or self._wins(theirs, own):
                tree.set(key, theirs)
            elif own != theirs:
                back.append(key)
        return back


class Trees:
    """Two nodes' trees over the same ``size`` registers. Each ``round`` makes them differ
    and repairs them, leaving them equal again with ``size`` keys, so one pair serves every
    count of differing keys."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.driver, self.responder = MerkleTree(), MerkleTree()
        self._rng = random.Random(seed)
        self._changes = 0
        for index in range(size):
            key, value = _record(index)
            digest = _written(value, "import", 1 + index // WRITES_PER_EVENT)
            self.driver.set(key, digest)
            self.responder.set(key, digest)
        self.driver.root()  # hashes every leaf once: part of building, not of a round
        self.responder.root()

    def _diverge(self, count: int) -> set[bytes]:
        """Makes ``count`` keys differ, in turn: rewritten on the responder by a newer
        event, missing on the driver, missing on the responder. The newer digests."""
        newer = set()
        for turn, index in enumerate(self._rng.sample(range(self.size), count)):
            key, value = _record(index)
            if turn % 3 == 0:
                self._changes += 1
                digest = _written(value, "change", VV[ORIGIN] + self._changes)
                newer.add(digest)
                self.responder.set(key, digest)
            else:
                (self.driver if turn % 3 == 1 else self.responder).set(key, None)
        return newer

    def round(self, differing: int) -> Outcome:
        """Makes ``differing`` keys differ and runs one round; RuntimeError unless it finds
        exactly those keys and leaves both roots equal."""
        link = _Link((self.driver, self.responder), self._diverge(differing))
        self.driver.root()  # a node keeps its root current as it writes: not a round's work
        self.responder.root()
        started = time.perf_counter()
        link.run()
        seconds = time.perf_counter() - started
        found = link.round.differing if link.round else set()
        what = f"repair of {differing:,} differing keys among {self.size:,}"
        if link.round is not None and not link.round.done:
            raise RuntimeError(f"{what}: the round did not end")
        if len(found) != differing:
            raise RuntimeError(f"{what}: the round found {len(found):,} differing keys")
        if self.driver.root() != self.responder.root():
            raise RuntimeError(f"{what}: the roots still differ after the round")
        return Outcome(
            seconds=seconds,
            bytes=link.bytes,
            round_trips=link.legs / 2,
            protocol_round_trips=link.round.round_trips if link.round else 0,
        )


def measure_repair(progress: Callable[[str], None]) -> list[Figure]:
    return measure(PLAN.get(), progress)


def measure(plan: RepairPlan, progress: Callable[[str], None]) -> list[Figure]:
    figures: list[Figure] = []
    for number, size in enumerate(plan.sizes):
        figures += _measure_size(plan, size, progress, equal_roots=number == 0)
    return figures


def _measure_size(
    plan: RepairPlan, size: int, progress: Callable[[str], None], equal_roots: bool
) -> list[Figure]:
    """The figures of one tree size; its two trees are freed on return."""
    progress(f"repair: building two trees of {size:,} keys")
    started = time.perf_counter()
    trees = Trees(size, plan.seed)
    progress(f"repair: two trees of {size:,} keys built in {time.perf_counter() - started:.1f} s")
    figures = []
    if equal_roots:
        check = trees.round(0)
        progress(f"repair: equal roots cost {check.bytes} bytes")
        figures.append(
            Figure(
                EQUAL_ROOTS,
                "repair, equal roots: one ROOT message with a 3-member version vector, framed",
                check.bytes,
                "bytes",
            )
        )
    for differing in DIFFERENCES:
        done = trees.round(differing)
        progress(
            f"repair: {differing:,} of {size:,} keys differing: {done.seconds:.4f} s, "
            f"{done.bytes:,} bytes, {done.round_trips:g} round trips "
            f"({done.protocol_round_trips} counted by the round)"
        )
        key = f"repair.n{size}.k{differing}"
        label = f"repair, {differing:,} of {size:,} keys differing"
        figures += [
            Figure(
                f"{key}.seconds",
                f"{label}: time to converge (wall time, both sides in one process, no network)",
                round(done.seconds, 4),
                "s",
            ),
            Figure(
                f"{key}.bytes",
                f"{label}: bytes both ways (framed, the ROOT offer included)",
                done.bytes,
                "bytes",
            ),
            Figure(
                f"{key}.round_trips",
                f"{label}: round trips until both agree (a last push counts half)",
                done.round_trips,
                "round trips",
            ),
        ]
    return figures
