"""A loopback TCP proxy for one peer link, with faults a test can switch on and off.

Each direction (``up``: from the dialling node to the one it dials; ``down``: back) has
its own ``Faults``: a delay per chunk, a bandwidth cap, chunks reordered (the halves of
each chunk swapped, which breaks the TLS stream as real reordering would), or a black hole
(bytes read and dropped while the connection stays open). ``cut`` closes every connection
and refuses new ones until ``heal``. Faults apply to connections already open, from their
next chunk on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 65536


@dataclass
class Faults:
    delay: float = 0.0  # seconds added before each chunk is passed on
    rate: int = 0  # bytes per second at most; 0 is unlimited
    reorder: bool = False
    blackhole: bool = False

    def clear(self) -> None:
        self.delay, self.rate, self.reorder, self.blackhole = 0.0, 0, False, False


class LinkProxy:
    def __init__(self, target: Callable[[], tuple[str, int]]) -> None:
        self.target = target
        self.blocked = False
        self.up = Faults()
        self.down = Faults()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target(), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:  # a cut() that came meanwhile must cover this connection too
                if self.blocked:
                    client.close()
                    upstream.close()
                    continue
                self._open.update((client, upstream))
            for source, sink, faults in (
                (client, upstream, self.up),
                (upstream, client, self.down),
            ):
                threading.Thread(
                    target=self._pump, args=(source, sink, faults), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, faults: Faults) -> None:
        try:
            while data := source.recv(CHUNK):
                if faults.blackhole:
                    continue
                if faults.delay:
                    time.sleep(faults.delay)
                if faults.rate:
                    time.sleep(len(data) / faults.rate)
                if faults.reorder and len(data) > 1:
                    half = len(data) // 2
                    data = data[half:] + data[:half]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._drop(s)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        with self._lock:
            self.blocked = True
            live = list(self._open)
        for sock in live:
            self._drop(sock)

    def heal(self) -> None:
        """Lift the cut and every fault."""
        self.up.clear()
        self.down.clear()
        self.blocked = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()
