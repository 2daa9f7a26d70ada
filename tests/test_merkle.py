from protocol.merkle import MerkleTree


def test_root_is_a_function_of_content_not_order() -> None:
    a, b = MerkleTree(), MerkleTree()
    keys = [f"rr example. 0 n{i}.example. A {i:032x}" for i in range(200)]
    for i, key in enumerate(keys):
        a.set(key, f"e{i}")
    for i, key in reversed(list(enumerate(keys))):
        b.set(key, f"e{i}")
    assert a.root() == b.root()
    b.set(keys[7], "other")
    assert a.root() != b.root()
    b.set(keys[7], "e7")
    assert a.root() == b.root()


def test_removing_keys_restores_empty_root() -> None:
    tree = MerkleTree()
    empty = tree.root()
    tree.set("k", "e")
    assert tree.root() != empty
    tree.set("k", None)
    assert tree.root() == empty
    assert len(empty) == 64
