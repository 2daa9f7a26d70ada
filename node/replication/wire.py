"""Peer messages over a byte stream: frames in, messages out, batched writes.

The peer-protocol rules live in ``protocol.peer`` and ``protocol.frames``; this is only
the I/O around them. Several messages go out in one ``send_all``: TLS records are costly
one by one and cheap in batches.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Iterator

import trio

from protocol.events import SignedEvent
from protocol.frames import FRAME_HEADER, FrameDecoder, FrameError, encode_frame
from protocol.peer import (
    MAX_EVENTS_PER_MESSAGE,
    Events,
    Message,
    MessageError,
    decode_message,
    encode_message,
)

RECEIVE_CHUNK = 65536
# Event wires per EVENTS message; base64 makes them 4/3 larger, well inside MAX_FRAME.
MAX_EVENT_BYTES_PER_MESSAGE = 6 * 1024 * 1024


class LinkClosed(Exception):
    """The other side closed the connection."""


# What a bad or broken connection raises; each ends that connection and nothing else.
LINK_ERRORS = (
    OSError,
    ssl.SSLError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    LinkClosed,
    MessageError,
    FrameError,
)


class MessageStream:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._decoder = FrameDecoder()
        self._ready: list[bytes] = []
        self.bytes_in = 0
        self.bytes_out = 0
        # Told the framed size of each message, and whether it was sent (else received).
        self.tally: Callable[[Message, int, bool], None] | None = None

    async def receive(self) -> Message:
        """The next message; LinkClosed at EOF, MessageError or FrameError if malformed."""
        while not self._ready:
            data = await self.stream.receive_some(RECEIVE_CHUNK)
            if not data:
                raise LinkClosed("the peer closed the connection")
            self.bytes_in += len(data)
            self._ready.extend(self._decoder.feed(bytes(data)))
        payload = self._ready.pop(0)
        message = decode_message(payload)
        if self.tally is not None:
            self.tally(message, FRAME_HEADER + len(payload), False)
        return message

    async def send(self, messages: Iterable[Message]) -> None:
        frames = []
        for message in messages:
            frame = encode_frame(encode_message(message))
            if self.tally is not None:
                self.tally(message, len(frame), True)
            frames.append(frame)
        data = b"".join(frames)
        if data:
            self.bytes_out += len(data)
            await self.stream.send_all(data)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


def event_batches(events: Iterable[SignedEvent]) -> Iterator[Events]:
    """EVENTS messages within the count and size limits."""
    batch: list[SignedEvent] = []
    size = 0
    for event in events:
        wire_size = len(event.to_wire())
        if batch and (
            len(batch) >= MAX_EVENTS_PER_MESSAGE or size + wire_size > MAX_EVENT_BYTES_PER_MESSAGE
        ):
            yield Events(batch)
            batch, size = [], 0
        batch.append(event)
        size += wire_size
    if batch:
        yield Events(batch)
