"""Keep-alive HTTP/1.1 requests over h11, for load whose own CPU must stay small.

The propagation run writes at a fixed rate on the same cores as the nodes it measures.
httpx costs several milliseconds of CPU per request here, which at 100 writes/s takes half
a core from the nodes; h11 on a trio stream costs a fraction of that.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

RECEIVE_CHUNK = 65536


class _Connection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

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

    async def put_json(self, target: str, document: Any) -> tuple[int, bytes]:
        body = json.dumps(document).encode()
        headers = [
            *self._headers,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="PUT", target=target, headers=headers)
        while True:
            reused = bool(self._idle)
            if reused:
                connection = self._idle.pop()
            else:
                connection = _Connection(await trio.open_tcp_stream(self._host, self._port))
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
            self._idle.append(connection)
        else:
            await connection.stream.aclose()
        return status, answer

    async def aclose(self) -> None:
        for connection in self._idle:
            await connection.stream.aclose()
        self._idle.clear()
