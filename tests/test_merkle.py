import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.merkle import MAX_PREFIX, MerkleTree, entry_digest, hash_entries, key_position


def _digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:16]


KEYS = [f"rr example. 0 n{i}.example. A {i:032x}" for i in range(300)]


def test_root_is_a_function_of_content_not_order() -> None:
    a, b = MerkleTree(), MerkleTree()
    for i, key in enumerate(KEYS):
        a.set(key, _digest(f"e{i}"))
    for i, key in reversed(list(enumerate(KEYS))):
        b.set(key, _digest(f"e{i}"))
    assert a.root() == b.root()
    b.set(KEYS[7], _digest("other"))
    assert a.root() != b.root()
    b.set(KEYS[7], _digest("e7"))
    assert a.root() == b.root()


def test_removing_keys_restores_empty_root() -> None:
    tree = MerkleTree()
    empty = tree.root()
    tree.set("k", _digest("e"))
    assert tree.root() != empty and len(tree) == 1
    tree.set("k", None)
    assert tree.root() == empty and len(tree) == 0
    assert len(empty) == 64


def test_counts_and_entries_follow_every_level() -> None:
    tree = MerkleTree()
    for i, key in enumerate(KEYS):
        tree.set(key, _digest(str(i)))
    tree.set(KEYS[0], None)
    assert tree.count("") == len(tree) == len(KEYS) - 1
    for length in (1, 2, 3, 4, 6, MAX_PREFIX):
        prefix = key_position(KEYS[5])[:length]
        expected = {k for k in KEYS[1:] if key_position(k).startswith(prefix)}
        assert set(tree.entries(prefix)) == expected
        assert tree.count(prefix) == len(expected)
    assert sum(tree.count(d) for d in "0123456789abcdef") == len(tree)


def test_virtual_nodes_below_the_leaves_hash_only_their_keys() -> None:
    tree = MerkleTree()
    for i, key in enumerate(KEYS):
        tree.set(key, _digest(str(i)))
    deep = key_position(KEYS[9])[:5]
    for prefix in ("", deep[:2], deep[:3], deep):
        assert tree.children(prefix) == [tree.node_hash(prefix + d) for d in "0123456789abcdef"]
    before = tree.node_hash(deep)
    assert before == hash_entries(tree.entries(deep))
    other = next(k for k in KEYS if not key_position(k).startswith(key_position(KEYS[9])[:3]))
    tree.set(other, _digest("changed"))
    assert tree.node_hash(deep) == before
    tree.set(KEYS[9], _digest("changed"))
    assert tree.node_hash(deep) != before


def test_the_entry_digest_covers_every_stored_field() -> None:
    base = ("e1", 5, "o", 2, '{"ttl":300}')
    digests = {
        entry_digest(*base),
        entry_digest("e2", 5, "o", 2, '{"ttl":300}'),
        entry_digest("e1", 6, "o", 2, '{"ttl":300}'),
        entry_digest("e1", 5, "p", 2, '{"ttl":300}'),
        entry_digest("e1", 5, "o", 3, '{"ttl":300}'),
        entry_digest("e1", 5, "o", 2, '{"ttl": 300}'),
        entry_digest("e1", 5, "o", 2, None),
        entry_digest("e1", 5, "o", 2, "null"),
    }
    assert len(digests) == 8


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3)), max_size=200))
def test_incremental_updates_match_a_fresh_build(ops: list[tuple[int, int]]) -> None:
    live = MerkleTree()
    final: dict[str, bytes] = {}
    for index, label in ops:
        key = f"k{index}"
        digest = None if label == 0 else _digest(str(label))
        live.set(key, digest)
        live.root()  # interleave reads with writes
        if digest is None:
            final.pop(key, None)
        else:
            final[key] = digest
    fresh = MerkleTree()
    for key, digest in final.items():
        fresh.set(key, digest)
    assert live.root() == fresh.root()
    assert len(live) == len(final)


def test_the_documented_values() -> None:
    """docs/protocol.md, "Merkle tree": the test vector event's TTL register."""
    tree = MerkleTree()
    assert tree.root() == "f3b005febbe93d7dbb63b8bc335ab195c4e0b41379caef5878ff8148aa3db3ab"
    key = "ttl example.com. 0 www.example.com. A"
    digest = entry_digest(
        "50c12347daa93345c2c8d071dde7eeaf47e42912a75fc28b82ddfd85f06239ee",
        (1764489600000 << 16) + 1,
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
        3,
        '{"ttl":300}',
    )
    assert digest.hex() == "13acd26aaac562f9a667e3a5c71b6af9"
    assert key_position(key).startswith("f40312d5")
    tree.set(key, digest)
    assert tree.node_hash("f40").hex() == (
        "9d75d0f417bff351d6b7d7a40b760fc516868745fcee46f05fc2b761b55cfb4d"
    )
    assert tree.root() == "80c878584aedb6c378a0595bb7f4aaa66e1ae8211c0a9d2f3d23202671a3570e"
