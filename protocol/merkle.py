"""An incremental Merkle tree over the replicated state, addressed by hash prefixes.

Every state key sits at the position given by the hex digits of SHA-256(key). A tree node
is named by a prefix of those digits ("" is the root) and has 16 children, one per next
digit. The top ``STORED_DEPTH`` levels are kept in memory and updated as keys change:
updating a key marks one leaf dirty, and hashes are recomputed lazily for dirty paths only,
so keeping the root current costs O(depth) per write and nothing per read. Below the stored
leaves the tree goes on virtually: the hash of a deeper prefix is computed on demand from
the few entries of its leaf, so two nodes can descend to a single differing key without
either keeping a tree of a million leaves.

A leaf (and any virtual node below one) hashes its sorted (key, entry digest) pairs; an
interior stored node hashes its children's hashes. The entry digest covers every stored
field of the key's register (event id, HLC, origin, sequence number and the value's exact
text), so a damaged row shows as a difference even when its event id was left intact.
Tombstones are entries like any other value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

FANOUT = 16
STORED_DEPTH = 3  # 16 ** 3 = 4096 leaves held in memory
LEAVES = FANOUT**STORED_DEPTH
MAX_PREFIX = 64  # hex digits of SHA-256: below this every key has its own position
ENTRY_BYTES = 16
EMPTY = hashlib.sha256(b"").digest()
HEX = "0123456789abcdef"


def key_position(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def entry_digest(event_id: str, hlc: int, origin: str, seq: int, text: str | None) -> bytes:
    """What the tree holds for one register; ``text`` is the stored value, None for a
    tombstone."""
    stored = b"\x00" if text is None else b"\x01" + text.encode()
    head = f"{event_id}\x00{hlc}\x00{origin}\x00{seq}\x00".encode()
    return hashlib.sha256(head + stored).digest()[:ENTRY_BYTES]


def hash_entries(entries: dict[str, bytes]) -> bytes:
    if not entries:
        return EMPTY
    h = hashlib.sha256()
    for key in sorted(entries):
        h.update(key.encode() + b"\x00" + entries[key])
    return h.digest()


def is_prefix(text: str) -> bool:
    return len(text) <= MAX_PREFIX and all(c in HEX for c in text)


class MerkleTree:
    def __init__(self) -> None:
        self._leaves: list[dict[str, bytes]] = [{} for _ in range(LEAVES)]
        # _levels[d] holds FANOUT**d hashes; _levels[STORED_DEPTH] are the leaf hashes.
        empty = [EMPTY]
        for _ in range(STORED_DEPTH):
            empty.insert(0, hashlib.sha256(empty[0] * FANOUT).digest())
        self._levels = [[empty[d]] * (FANOUT**d) for d in range(STORED_DEPTH + 1)]
        self._counts = [[0] * (FANOUT**d) for d in range(STORED_DEPTH + 1)]
        self._dirty: set[int] = set()

    def __len__(self) -> int:
        return self._counts[0][0]

    def get(self, key: str) -> bytes | None:
        return self._leaves[int(key_position(key)[:STORED_DEPTH], 16)].get(key)

    def set(self, key: str, digest: bytes | None) -> None:
        """Record ``key``'s entry digest; None removes the key."""
        leaf = int(key_position(key)[:STORED_DEPTH], 16)
        entries = self._leaves[leaf]
        if digest is None:
            if entries.pop(key, None) is None:
                return
            self._count(leaf, -1)
        else:
            if entries.get(key) == digest:
                return
            if key not in entries:
                self._count(leaf, 1)
            entries[key] = digest
        self._dirty.add(leaf)

    def _count(self, leaf: int, delta: int) -> None:
        for depth in range(STORED_DEPTH, -1, -1):
            self._counts[depth][leaf >> (4 * (STORED_DEPTH - depth))] += delta

    def _rehash(self) -> None:
        if not self._dirty:
            return
        parents = set()
        for leaf in self._dirty:
            self._levels[STORED_DEPTH][leaf] = hash_entries(self._leaves[leaf])
            parents.add(leaf >> 4)
        for depth in range(STORED_DEPTH - 1, -1, -1):
            above = set()
            for index in parents:
                first = index * FANOUT
                children = self._levels[depth + 1][first : first + FANOUT]
                self._levels[depth][index] = hashlib.sha256(b"".join(children)).digest()
                above.add(index >> 4)
            parents = above
        self._dirty.clear()

    def root(self) -> str:
        return self.node_hash("").hex()

    def node_hash(self, prefix: str) -> bytes:
        if len(prefix) <= STORED_DEPTH:
            self._rehash()
            return self._levels[len(prefix)][int(prefix or "0", 16)]
        return hash_entries(self.entries(prefix))

    def children(self, prefix: str) -> list[bytes]:
        if len(prefix) < STORED_DEPTH:
            return [self.node_hash(prefix + digit) for digit in HEX]
        # Below the stored levels: one pass over the prefix's keys, not one per child.
        groups: dict[str, dict[str, bytes]] = {digit: {} for digit in HEX}
        depth = len(prefix)
        for key, digest in self._leaves[int(prefix[:STORED_DEPTH], 16)].items():
            position = key_position(key)
            if position.startswith(prefix) and depth < MAX_PREFIX:
                groups[position[depth]][key] = digest
        return [hash_entries(groups[digit]) for digit in HEX]

    def count(self, prefix: str) -> int:
        """How many keys lie under ``prefix``; exact and cheap for stored levels."""
        if len(prefix) <= STORED_DEPTH:
            return self._counts[len(prefix)][int(prefix or "0", 16)]
        return len(self.entries(prefix))

    def _leaves_under(self, prefix: str) -> Iterator[dict[str, bytes]]:
        if len(prefix) >= STORED_DEPTH:
            yield self._leaves[int(prefix[:STORED_DEPTH], 16)]
            return
        span = FANOUT ** (STORED_DEPTH - len(prefix))
        first = int(prefix or "0", 16) * span
        yield from self._leaves[first : first + span]

    def entries(self, prefix: str) -> dict[str, bytes]:
        """Every (key, entry digest) under ``prefix``."""
        found: dict[str, bytes] = {}
        deep = len(prefix) > STORED_DEPTH
        for leaf in self._leaves_under(prefix):
            for key, digest in leaf.items():
                if not deep or key_position(key).startswith(prefix):
                    found[key] = digest
        return found
