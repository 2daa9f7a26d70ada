"""Keep-alive HTTP/1.1 requests over h11, for load whose own CPU must stay small.

The propagation run writes at a fixed rate on the same cores as the nodes it measures.
httpx costs several milliseconds of CPU per request here, which at 100 writes/s takes half
a core from the nodes; h11 on a trio stream costs a fraction of that.

A connection idle for longer than ``IDLE_EXPIRY`` is closed rather than used again. A
server closes idle connections after its keep-alive timeout (5 s by default on a node),
and a request sent just as it does may be handled and still go unanswered: the client
then sends it again on a new connection, and a PUT that had already created its RRset
answers 200 the second time.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

RECEIVE_CHUNK = 65536
IDLE_EXPIRY = 2.0
"""Seconds a connection may stay idle and still be used: well under the server's
keep-alive timeout."""


class _Connection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = trio.current_time()

    async def request(self, request: h11.Request, body: bytes) -> tuple[int, bytes, bool]:
        """Status, body, and whether the connection can carry another request."""
        out = self.h11.send(request) or b""
        out += (self.h11.send(h11.Data(data=body)) or b"") + (
            self.h11.send(h11.EndOfMessage()) or b""
        )
        await self.stream.send_all(out)
        status, chunks = 0, []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(RECEIVE_CHUNK)
                if not data and not status:  # h11 calls this a protocol error
                    raise trio.BrokenResourceError("the server closed the connection unanswered")
                self.h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("the server closed the connection mid-response")
        reusable = self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE
        if reusable:
            self.h11.start_next_cycle()
        return status, b"".join(chunks), reusable


class Http1Client:
    """Requests to one base URL, each on an idle connection or a new one."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not a base URL with a host and port: {base_url}")
        self._host, self._port = parts.hostname, parts.port
        self._headers = [("Host", parts.netloc), *headers.items()]
        self._idle: list[_Connection] = []

    async def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection that has not expired; expired ones are
        closed."""
        while self._idle:
            connection = self._idle.pop()
            if trio.current_time() - connection.idle_since <= IDLE_EXPIRY:
                return connection
            await connection.stream.aclose()
        return None

    async def put_json(self, target: str, document: Any) -> tuple[int, bytes]:
        body = json.dumps(document).encode()
        headers = [
            *self._headers,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="PUT", target=target, headers=headers)
        while True:
            idle = await self._idle_connection()
            reused = idle is not None
            connection = idle or _Connection(await trio.open_tcp_stream(self._host, self._port))
            try:
                status, answer, reusable = await connection.request(request, body)
            except (trio.BrokenResourceError, OSError):
                await connection.stream.aclose()
                if reused:  # the server closed it while it was idle: a PUT can go again
                    continue
                raise
            except BaseException:
                await connection.stream.aclose()
                raise
            break
        if reusable:
            connection.idle_since = trio.current_time()
            self._idle.append(connection)
        else:
            await connection.stream.aclose()
        return status, answer

    async def aclose(self) -> None:
        for connection in self._idle:
            await connection.stream.aclose()
        self._idle.clear()
