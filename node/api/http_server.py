"""The HTTP shell of the node's API: hypercorn's trio worker inside the node's own nursery.

quart-trio 0.12.0 under hypercorn 0.18.0 never closes a connection itself (hypercorn issue
#330). The app's last ``send`` (the empty body with ``more_body: False``) runs hypercorn's
end-of-response bookkeeping inline: hypercorn marks the stream closed, puts
``http.disconnect`` on the app's receive queue, then either closes the socket
(``Connection: close``) or re-arms the keep-alive idle timer. quart-trio's receive task sees
that disconnect and cancels the request nursery, so the bookkeeping is cancelled half-way at
its next checkpoint: the socket stays open and the idle timer is never started.
``Peer53Quart`` installs a connection class whose final send cannot be cancelled, so the
cancellation lands only after the response has been sent. That send never waits on the
client for long (hypercorn already shields its socket writes; the rest is bookkeeping), so
the shield cannot hold up shutdown. A client that disconnects while its request is still
being handled still cancels the handler, as before.
"""

from __future__ import annotations

import logging
from functools import partial
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGISendCallable, ASGISendEvent
from quart.ctx import RequestContext
from quart.globals import request_ctx
from quart.typing import ResponseTypes
from quart.wrappers import Request
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection
from werkzeug.exceptions import HTTPException

LOGGER_NAME = "peer53.http"
KEEP_ALIVE_TIMEOUT = 5.0
GRACEFUL_TIMEOUT = 3.0


def _is_final_body(message: ASGISendEvent) -> bool:
    return message["type"] == "http.response.body" and not message.get("more_body", False)


class ResponseCompletingHTTPConnection(TrioASGIHTTPConnection):
    """quart-trio's HTTP connection with a final send that a disconnect cannot interrupt."""

    # quart-trio itself changes this signature (adding the nursery) under a type: ignore.
    async def handle_request(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, send: ASGISendCallable
    ) -> None:
        async def send_to_completion(message: ASGISendEvent) -> None:
            if _is_final_body(message):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().handle_request(nursery, request, send_to_completion)


class Peer53Quart(QuartTrio):
    """The application class of the node's API, with the connection-close fix installed,
    and every request's body read before its response goes out.

    A handler that refuses a request early (no token, no such zone) does not read its body.
    When the body reaches the server after the response has gone out (a client may write
    headers and body apart), hypercorn 0.18 stops reading the connection without closing
    it, and the client's next request on it is never answered. A body larger than the app
    accepts is not read: its response says ``Connection: close`` instead.
    """

    asgi_http_class = ResponseCompletingHTTPConnection

    async def process_response(
        self, response: ResponseTypes, request_context: RequestContext | None = None
    ) -> ResponseTypes:
        response = await super().process_response(response, request_context)
        current = (request_context or request_ctx).request
        chunked = "chunked" in current.headers.get("Transfer-Encoding", "").lower()
        if (current.content_length or chunked) and not await _read_body(
            current, self.config["MAX_CONTENT_LENGTH"]
        ):
            response.headers["Connection"] = "close"
        return response


async def _read_body(current: Request, limit: int | None) -> bool:
    """Whether the whole body was read: not when it is over ``limit`` or too slow to come."""
    if limit is not None and (current.content_length or 0) > limit:
        return False
    try:
        await current.get_data()
    except HTTPException:
        return False
    return True


def _bind_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bound_address(url: str) -> tuple[str, int]:
    """Hypercorn reports what it bound as a URL such as ``http://[::1]:8053``."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"hypercorn reported an unexpected bind: {url}")
    return parts.hostname, parts.port


def _hypercorn_config(
    host: str, port: int, *, keep_alive_timeout: float, access_log: bool
) -> Config:
    config = Config()
    config.bind = [_bind_text(host, port)]
    config.keep_alive_timeout = keep_alive_timeout
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.errorlog = logging.getLogger(LOGGER_NAME)
    config.accesslog = logging.getLogger(f"{LOGGER_NAME}.access") if access_log else None
    return config


async def serve_http(
    app: QuartTrio,
    host: str,
    port: int,
    *,
    shutdown: trio.Event,
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
    access_log: bool = False,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown`` is set; start with ``nursery.start`` to learn the port.

    The started value is ``(host, bound_port)``, so port 0 can be used. Hypercorn's own
    messages go to the ``peer53.http`` logger instead of its private stderr handler.
    """
    config = _hypercorn_config(
        host, port, keep_alive_timeout=keep_alive_timeout, access_log=access_log
    )
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, shutdown_trigger=shutdown.wait)
        )
        task_status.started(_bound_address(binds[0]))
