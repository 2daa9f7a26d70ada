"""The fault-injecting link proxy, against a plain echo server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faultproxy import LinkProxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return

            def pump(c: socket.socket = conn) -> None:
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)

            threading.Thread(target=pump, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield ("127.0.0.1", int(server.getsockname()[1]))
    server.close()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[LinkProxy]:
    link = LinkProxy(lambda: echo)
    yield link
    link.close()


def _connect(proxy: LinkProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    return sock


def _exchange(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_passes_data_both_ways(proxy: LinkProxy) -> None:
    with _connect(proxy) as sock:
        assert _exchange(sock, b"hello") == b"hello"


def test_delay_applies_per_direction(proxy: LinkProxy) -> None:
    with _connect(proxy) as sock:
        proxy.up.delay = 0.3
        start = time.monotonic()
        assert _exchange(sock, b"x") == b"x"
        assert time.monotonic() - start >= 0.3


def test_throttle_caps_the_rate(proxy: LinkProxy) -> None:
    with _connect(proxy) as sock:
        proxy.down.rate = 100_000
        start = time.monotonic()
        assert _exchange(sock, b"y" * 50_000) == b"y" * 50_000
        assert time.monotonic() - start >= 0.4


def test_reorder_swaps_the_halves_of_a_chunk(proxy: LinkProxy) -> None:
    with _connect(proxy) as sock:
        proxy.up.reorder = True
        assert _exchange(sock, b"abcd") == b"cdab"


def test_blackhole_keeps_the_connection_but_drops_bytes(proxy: LinkProxy) -> None:
    with _connect(proxy) as sock:
        proxy.up.blackhole = True
        sock.sendall(b"lost")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.heal()
        sock.settimeout(5)
        assert _exchange(sock, b"back") == b"back"


def test_cut_closes_and_refuses_until_healed(proxy: LinkProxy) -> None:
    sock = _connect(proxy)
    proxy.cut()
    assert sock.recv(10) == b""
    sock.close()
    refused = _connect(proxy)
    assert refused.recv(10) == b""
    refused.close()
    proxy.heal()
    with _connect(proxy) as again:
        assert _exchange(again, b"ok") == b"ok"
