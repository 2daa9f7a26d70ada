"""Peer-link framing: a 4-byte big-endian length, then one message.

Sans-IO: ``FrameDecoder`` is fed whatever bytes arrive and yields whole frames. A frame
longer than the limit is an error for that link only; the caller closes it. The limit
is checked on the length prefix, before any of the frame is buffered, so a peer cannot
make a node allocate more than one frame's worth of memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

MAX_FRAME = 16 * 1024 * 1024
_LENGTH = struct.Struct("!I")
FRAME_HEADER = _LENGTH.size


class FrameError(ValueError):
    """The byte stream broke the framing rules; the link must be closed."""


def encode_frame(payload: bytes, max_frame: int = MAX_FRAME) -> bytes:
    if len(payload) > max_frame:
        raise FrameError(f"frame of {len(payload)} bytes exceeds the {max_frame}-byte limit")
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add received bytes; yield every frame now complete."""
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > self.max_frame:
                raise FrameError(f"peer sent a {length}-byte frame; the limit is {self.max_frame}")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            frame = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            yield frame

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer)
