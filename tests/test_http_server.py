"""The API's HTTP shell against a real hypercorn on 127.0.0.1, spoken to over raw sockets.

The connection tests are the regression tests for hypercorn issue #330: without the fix in
``node.api.http_server`` the server never closes a connection, and reading to EOF hangs
until the deadline.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

import h11
import pytest
import trio

from node.api.http_server import LOGGER_NAME, Peer53Quart, serve_http

DEADLINE = 5.0
MAX_BODY = 1024
KEEP_ALIVE = 0.3


class Handlers:
    """Records what the app's handlers saw, for assertions about cancellation."""

    def __init__(self) -> None:
        self.slow_started = trio.Event()
        self.slow_cancelled = trio.Event()


def make_app(handlers: Handlers) -> Peer53Quart:
    app = Peer53Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.route("/hello/<name>")
    async def hello(name: str) -> str:
        return f"hello {name}"

    @app.route("/refuse", methods=["PUT"])
    async def refuse() -> tuple[str, int]:
        return "no", 403  # as a failed token check does: before reading the body

    @app.route("/slow")
    async def slow() -> str:
        handlers.slow_started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            handlers.slow_cancelled.set()
            raise

    return app


class Server:
    def __init__(self, address: tuple[str, int], shutdown: trio.Event, handlers: Handlers) -> None:
        self.address = address
        self.shutdown = shutdown
        self.handlers = handlers

    async def connect(self) -> trio.SocketStream:
        return await trio.open_tcp_stream(*self.address)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    shutdown = trio.Event()
    handlers = Handlers()
    address = await nursery.start(
        partial(
            serve_http,
            make_app(handlers),
            "127.0.0.1",
            0,
            shutdown=shutdown,
            keep_alive_timeout=KEEP_ALIVE,
        )
    )
    yield Server(address, shutdown, handlers)
    shutdown.set()


def request_bytes(client: h11.Connection, path: str, *, close: bool = False) -> bytes:
    headers = [("Host", "127.0.0.1")]
    if close:
        headers.append(("Connection", "close"))
    return client.send(h11.Request(method="GET", target=path, headers=headers)) + client.send(
        h11.EndOfMessage()
    )


async def next_event(client: h11.Connection, stream: trio.SocketStream) -> h11.Event:
    while (event := client.next_event()) is h11.NEED_DATA:
        client.receive_data(await stream.receive_some(65536))
    assert isinstance(event, h11.Event)
    return event


async def read_response(client: h11.Connection, stream: trio.SocketStream) -> tuple[int, bytes]:
    response = await next_event(client, stream)
    assert isinstance(response, h11.Response)
    body = b""
    while not isinstance(event := await next_event(client, stream), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        body += event.data
    return response.status_code, body


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    """Everything the server still sends; returns only once the server closes."""
    rest = b""
    with trio.fail_after(DEADLINE):
        while chunk := await stream.receive_some(65536):
            rest += chunk
    return rest


async def test_started_value_is_the_bound_address(server: Server) -> None:
    host, port = server.address
    assert host == "127.0.0.1"
    assert port > 0


async def test_connection_close_is_honoured(server: Server) -> None:
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        await stream.send_all(request_bytes(client, "/hello/close", close=True))

        assert await read_response(client, stream) == (200, b"hello close")
        assert await read_to_eof(stream) == b""


async def test_idle_keep_alive_connection_is_closed_after_timeout(server: Server) -> None:
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        await stream.send_all(request_bytes(client, "/hello/idle"))
        assert await read_response(client, stream) == (200, b"hello idle")

        answered = trio.current_time()
        assert await read_to_eof(stream) == b""
        assert trio.current_time() - answered >= KEEP_ALIVE / 2


async def test_keep_alive_serves_several_requests_on_one_connection(server: Server) -> None:
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        for name in ("one", "two", "three"):
            await stream.send_all(request_bytes(client, f"/hello/{name}"))
            assert await read_response(client, stream) == (200, f"hello {name}".encode())
            client.start_next_cycle()

        await stream.send_all(request_bytes(client, "/hello/last", close=True))
        assert await read_response(client, stream) == (200, b"hello last")
        assert await read_to_eof(stream) == b""


async def test_a_request_refused_before_its_body_came_leaves_the_connection_usable(
    server: Server,
) -> None:
    """The body reaches the server only after the handler has refused the request, as it
    can when a client writes headers and body apart. The answer waits for the body, so the
    connection is reused: hypercorn 0.18 would otherwise stop reading it, leaving the
    client's next request unanswered."""
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        headers = [("Host", "127.0.0.1"), ("Content-Length", "4")]
        await stream.send_all(
            client.send(h11.Request(method="PUT", target="/refuse", headers=headers))
        )
        with trio.move_on_after(0.2):
            await stream.receive_some(65536)
            raise AssertionError("answered before the body was read")
        await stream.send_all(client.send(h11.Data(data=b"body")) + client.send(h11.EndOfMessage()))
        assert await read_response(client, stream) == (403, b"no")
        client.start_next_cycle()
        await stream.send_all(request_bytes(client, "/hello/again"))
        with trio.fail_after(DEADLINE):
            assert await read_response(client, stream) == (200, b"hello again")


async def test_a_body_too_large_to_read_closes_the_connection(server: Server) -> None:
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        headers = [("Host", "127.0.0.1"), ("Content-Length", str(10 * MAX_BODY))]
        await stream.send_all(
            client.send(h11.Request(method="PUT", target="/refuse", headers=headers))
        )
        response = await next_event(client, stream)
        assert isinstance(response, h11.Response) and response.status_code in (403, 413)
        assert (b"connection", b"close") in response.headers


async def test_client_disconnect_still_cancels_a_running_handler(server: Server) -> None:
    async with await server.connect() as stream:
        client = h11.Connection(h11.CLIENT)
        await stream.send_all(request_bytes(client, "/slow"))
        with trio.fail_after(DEADLINE):
            await server.handlers.slow_started.wait()

    with trio.fail_after(DEADLINE):
        await server.handlers.slow_cancelled.wait()


async def test_shutdown_event_stops_serving() -> None:
    shutdown = trio.Event()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(
                partial(serve_http, make_app(Handlers()), "127.0.0.1", 0, shutdown=shutdown)
            )
            async with await trio.open_tcp_stream(*address) as stream:
                client = h11.Connection(h11.CLIENT)
                await stream.send_all(request_bytes(client, "/hello/before", close=True))
                assert await read_response(client, stream) == (200, b"hello before")
            shutdown.set()

    with pytest.raises(OSError):
        await trio.open_tcp_stream(*address)


async def test_hypercorn_logs_through_logging_without_access_log(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(
            partial(serve_http, make_app(Handlers()), "127.0.0.1", 0, shutdown=shutdown)
        )
        async with await trio.open_tcp_stream(host, port) as stream:
            client = h11.Connection(h11.CLIENT)
            await stream.send_all(request_bytes(client, "/hello/log", close=True))
            assert await read_response(client, stream) == (200, b"hello log")
        shutdown.set()

    running = [r for r in caplog.records if "Running on" in r.getMessage()]
    assert [r.name for r in running] == [LOGGER_NAME]
    assert f"http://{host}:{port}" in running[0].getMessage()
    assert not [r for r in caplog.records if "GET" in r.getMessage()]
    assert capsys.readouterr() == ("", "")
