import random

import pytest

from protocol.frames import FrameDecoder, FrameError, encode_frame


def test_frames_survive_any_split() -> None:
    payloads = [b"", b"a", b"hello" * 100, bytes(range(256)) * 40]
    stream = b"".join(encode_frame(p) for p in payloads)
    rng = random.Random(7)
    for _ in range(50):
        decoder = FrameDecoder()
        got: list[bytes] = []
        i = 0
        while i < len(stream):
            step = rng.randint(1, 300)
            got.extend(decoder.feed(stream[i : i + step]))
            i += step
        assert got == payloads
        assert decoder.pending == 0


def test_oversized_length_is_refused_before_buffering() -> None:
    decoder = FrameDecoder(max_frame=10)
    with pytest.raises(FrameError, match="limit"):
        list(decoder.feed(b"\x00\x00\x00\x0b"))
    with pytest.raises(FrameError):
        encode_frame(b"x" * 11, max_frame=10)
    assert encode_frame(b"x" * 10, max_frame=10)[:4] == b"\x00\x00\x00\x0a"
