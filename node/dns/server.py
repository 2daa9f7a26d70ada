"""DNS over UDP and TCP: thin trio shells around the sans-IO answer code.

UDP uses a drain loop: wait until the socket is readable, then answer packets with plain
non-blocking ``recvfrom``/``sendto`` until the socket is empty or a batch is done. Awaiting
once per datagram costs more than answering it (see docs/performance.md).

TCP follows RFC 7766: the 2-byte length prefix, any number of queries per connection,
pipelined queries answered in order, an idle timeout, and a cap on open connections.
A failure in one connection or one packet never stops a listener.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from node.config import Address

log = logging.getLogger("peer53.dns")

Responder = Callable[[bytes, bool], bytes | None]
UDP_BATCH = 64
MAX_UDP_PACKET = 65535


@dataclass
class ListenerStats:
    """Counters read by status and metrics; plain integers keep the hot path cheap."""

    udp_received: int = 0
    udp_errors: int = 0
    tcp_connections: int = 0
    tcp_refused: int = 0
    tcp_queries: int = 0
    handler_errors: int = 0


def bind_udp(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address.host, address.port))
    sock.setblocking(False)
    return sock


def _answer(respond: Responder, wire: bytes, tcp: bool, stats: ListenerStats) -> bytes | None:
    try:
        return respond(wire, tcp)
    except Exception:
        stats.handler_errors += 1
        log.exception("error answering a query; no response sent")
        return None


async def serve_udp(sock: socket.socket, respond: Responder, stats: ListenerStats) -> None:
    while True:
        await trio.lowlevel.wait_readable(sock)
        for _ in range(UDP_BATCH):
            try:
                wire, peer = sock.recvfrom(MAX_UDP_PACKET)
            except BlockingIOError:
                break
            except OSError:
                stats.udp_errors += 1
                break
            stats.udp_received += 1
            reply = _answer(respond, wire, False, stats)
            if reply is not None:
                try:
                    sock.sendto(reply, peer)
                except OSError:
                    stats.udp_errors += 1
        await trio.lowlevel.checkpoint()


class TcpServer:
    def __init__(
        self, respond: Responder, idle_timeout: float, max_connections: int, stats: ListenerStats
    ) -> None:
        self.respond = respond
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.stats = stats
        self.open = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        if self.open >= self.max_connections:
            self.stats.tcp_refused += 1
            await stream.aclose()
            return
        self.open += 1
        self.stats.tcp_connections += 1
        try:
            await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception:
            self.stats.handler_errors += 1
            log.exception("error on a DNS TCP connection")
        finally:
            self.open -= 1
            await stream.aclose()

    async def _serve(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while True:
            with trio.move_on_after(self.idle_timeout) as idle:
                chunk = await stream.receive_some(65536)
            if idle.cancelled_caught or not chunk:
                return
            buffer += chunk
            replies = []
            while len(buffer) >= 2:
                (length,) = struct.unpack_from("!H", buffer)
                if len(buffer) < 2 + length:
                    break
                wire = bytes(buffer[2 : 2 + length])
                del buffer[: 2 + length]
                self.stats.tcp_queries += 1
                reply = _answer(self.respond, wire, True, self.stats)
                if reply is not None:
                    replies.append(struct.pack("!H", len(reply)) + reply)
            if replies:
                await stream.send_all(b"".join(replies))


async def open_tcp(address: Address) -> list[trio.SocketListener]:
    return await trio.open_tcp_listeners(address.port, host=address.host)


def bound_port(listener: trio.SocketListener) -> int:
    return int(listener.socket.getsockname()[1])
