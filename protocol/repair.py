"""Anti-entropy rounds: finding the keys on which two nodes differ, sans-IO.

A round is driven by the node that saw a Merkle root different from its own. It asks the
peer for tree nodes by prefix (DESCEND), compares each answer with its own tree, and goes
down only into children whose hashes differ. The peer answers a prefix with its entries
instead of children once its subtree holds at most ``LIST_AT`` keys, so finding K
differing keys among N costs about K * log16(N) hashes and one round trip per level.
At the entries, keys this node holds that differ are pushed (its signed events go to the
peer), and keys the peer holds that differ are fetched (FETCH). The round is over when
every request has been answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from protocol.merkle import HEX, MAX_PREFIX, MerkleTree
from protocol.peer import (
    MAX_KEYS_PER_MESSAGE,
    MAX_PREFIXES_PER_MESSAGE,
    SHORT_HASH_HEX,
    Descend,
    Fetch,
    Message,
    TreeNode,
)

LIST_AT = 16  # a subtree this small is answered with its entries


def short(digest: bytes) -> str:
    return digest.hex()[:SHORT_HASH_HEX]


def describe(tree: MerkleTree, prefix: str) -> TreeNode:
    """How this node answers DESCEND for one prefix."""
    if len(prefix) >= MAX_PREFIX or tree.count(prefix) <= LIST_AT:
        return TreeNode(None, {k: d.hex() for k, d in tree.entries(prefix).items()})
    return TreeNode(tuple(short(h) for h in tree.children(prefix)), None)


@dataclass
class Difference:
    descend: list[str] = field(default_factory=list)
    push: set[str] = field(default_factory=set)  # keys whose value here differs
    fetch: set[str] = field(default_factory=set)  # keys whose value there differs


def compare(tree: MerkleTree, answers: Mapping[str, TreeNode]) -> Difference:
    diff = Difference()
    for prefix, node in answers.items():
        if node.children is not None:
            own = tree.children(prefix)
            diff.descend.extend(
                prefix + digit
                for digit, theirs, mine in zip(HEX, node.children, own, strict=True)
                if short(mine) != theirs
            )
            continue
        theirs = node.entries or {}
        mine = {k: d.hex() for k, d in tree.entries(prefix).items()}
        for key in mine.keys() | theirs.keys():
            if mine.get(key) != theirs.get(key):
                if key in mine:
                    diff.push.add(key)
                if key in theirs:
                    diff.fetch.add(key)
    return diff


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class RepairRound:
    """The driver's side of one round. Answers come back in the order of the requests
    (one link, one responder), so each answer is matched to the oldest open request."""

    def __init__(self, round_id: int) -> None:
        self.round_id = round_id
        self._open: deque[int] = deque()  # the wave of each request awaiting its answer
        self.round_trips = 0
        self.differing: set[str] = set()
        self.fetched: set[str] = set()
        self._wave = 1

    @property
    def done(self) -> bool:
        return not self._open

    def _requests(self, messages: list[Message], wave: int) -> list[Message]:
        self._open.extend([wave] * len(messages))
        if messages:
            self.round_trips = max(self.round_trips, wave)
        return messages

    def begin(self) -> list[Message]:
        return self._requests([Descend(self.round_id, [""])], 1)

    def on_nodes(
        self, tree: MerkleTree, answers: Mapping[str, TreeNode]
    ) -> tuple[list[Message], Difference]:
        """DESCEND requests for the differing children, and the differing keys; the
        caller decides which of those to fetch (see ``fetch``) and which to push."""
        self._wave = self._open.popleft() + 1
        diff = compare(tree, answers)
        self.differing |= diff.push | diff.fetch
        messages: list[Message] = [
            Descend(self.round_id, chunk)
            for chunk in _chunks(diff.descend, MAX_PREFIXES_PER_MESSAGE)
        ]
        return self._requests(messages, self._wave), diff

    def fetch(self, keys: Iterable[str], barrier: bool = False) -> list[Message]:
        """FETCH requests for the peer's events behind ``keys``, found by the last answer.
        With ``barrier`` (the caller pushed events just before), an empty FETCH goes even
        when nothing is wanted: its answer comes after the peer applied the pushes, so a
        round ends only once both sides are repaired."""
        wanted = sorted(keys)
        self.fetched.update(wanted)
        messages: list[Message] = [
            Fetch(self.round_id, chunk) for chunk in _chunks(wanted, MAX_KEYS_PER_MESSAGE)
        ]
        if barrier and not messages:
            messages.append(Fetch(self.round_id, []))
        return self._requests(messages, self._wave)

    def on_fetched(self) -> None:
        """The last REPAIR answering a FETCH arrived."""
        self._open.popleft()
