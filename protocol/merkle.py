"""An incremental Merkle tree over the replicated state.

Leaves are buckets of state keys, chosen by the first hex digits of SHA-256(key); a leaf
hashes its sorted (key, event id) pairs and an interior node hashes its children's hashes.
Updating a key marks one path dirty; hashes are recomputed lazily for dirty paths only, so
keeping the root current costs O(depth) per write and nothing per read when nothing changed.
Tombstones are state too: their (key, event id) pairs are in the tree like any other value.
"""

from __future__ import annotations

import hashlib

FANOUT_BITS = 4
DEPTH = 3  # 16 ** 3 = 4096 leaves
FANOUT = 1 << FANOUT_BITS
LEAVES = FANOUT**DEPTH
EMPTY = hashlib.sha256(b"").digest()


def bucket_of(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:DEPTH], 16)


class MerkleTree:
    def __init__(self) -> None:
        self._leaves: list[dict[str, str]] = [{} for _ in range(LEAVES)]
        # levels[d] holds FANOUT**d hashes; levels[DEPTH] are the leaf hashes.
        empty = [EMPTY]
        for _ in range(DEPTH):
            empty.insert(0, hashlib.sha256(empty[0] * FANOUT).digest())
        self._levels: list[list[bytes]] = [[empty[d]] * (FANOUT**d) for d in range(DEPTH + 1)]
        self._dirty: set[int] = set()

    def set(self, key: str, event_id: str | None) -> None:
        """Record the event that holds ``key``'s value; None removes the key."""
        leaf = bucket_of(key)
        if event_id is None:
            if self._leaves[leaf].pop(key, None) is None:
                return
        else:
            self._leaves[leaf][key] = event_id
        self._dirty.add(leaf)

    def leaf_pairs(self, leaf: int) -> list[tuple[str, str]]:
        return sorted(self._leaves[leaf].items())

    def _rehash(self) -> None:
        if not self._dirty:
            return
        parents = set()
        for leaf in self._dirty:
            h = hashlib.sha256()
            for key, event_id in self.leaf_pairs(leaf):
                h.update(key.encode() + b"\x00" + event_id.encode() + b"\n")
            self._levels[DEPTH][leaf] = h.digest() if self._leaves[leaf] else EMPTY
            parents.add(leaf >> FANOUT_BITS)
        for depth in range(DEPTH - 1, -1, -1):
            above = set()
            for index in parents:
                first = index << FANOUT_BITS
                children = self._levels[depth + 1][first : first + FANOUT]
                self._levels[depth][index] = hashlib.sha256(b"".join(children)).digest()
                above.add(index >> FANOUT_BITS)
            parents = above
        self._dirty.clear()

    def root(self) -> str:
        self._rehash()
        return self._levels[0][0].hex()

    def children(self, depth: int, index: int) -> list[str]:
        """Hashes of the children of node ``index`` at ``depth``, for descending on repair."""
        self._rehash()
        first = index << FANOUT_BITS
        return [h.hex() for h in self._levels[depth + 1][first : first + FANOUT]]
