"""A thin client for one node's HTTP API.

Every failure becomes a ``CtlError`` whose text is fit to show the operator as one line:
the command line never prints a traceback for something the network or the node did.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

JSON = "application/json"
ZONE_FILE = "text/dns"
TIMEOUT = 30.0
UPLOAD_CHUNK = 64 * 1024
ERROR_TEXT_LIMIT = 200


class CtlError(Exception):
    """A failure to report to the operator as one line."""


class ApiError(CtlError):
    """The node answered with an error body: ``{"error": {"code", "message", ...}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.line = line
        where = "".join(
            [f" (field {field})" if field else "", f" (line {line})" if line is not None else ""]
        )
        super().__init__(f"{code}: {message}{where}")


def path_segment(text: str) -> str:
    """One percent-encoded URL path segment; "." (the root zone) is encoded too, because
    HTTP clients and servers remove "." segments from paths."""
    segment = quote(text, safe="")
    return "%2E" if segment == "." else segment


def api_error(response: httpx.Response) -> ApiError:
    """The node's error body; without one (a proxy, a route the node lacks) the status line,
    plus the body if it is plain text."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase
        if response.headers.get("content-type", "").startswith("text/plain"):
            message = " ".join(response.text.split())[:ERROR_TEXT_LIMIT] or message
        return ApiError(response.status_code, f"http {response.status_code}", message)
    field = error.get("field")
    line = error.get("line")
    return ApiError(
        response.status_code,
        code,
        message,
        field=str(field) if field is not None else None,
        line=line if isinstance(line, int) else None,
    )


def file_chunks(file: BinaryIO, on_sent: Callable[[bytes], None]) -> Iterator[bytes]:
    """The file in chunks; ``on_sent`` sees each chunk once the transport has taken it."""
    while chunk := file.read(UPLOAD_CHUNK):
        yield chunk
        on_sent(chunk)


class NodeClient:
    """Requests to one node's API with the operator's token; raises ``CtlError``."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url
        self.has_token = token is not None
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self._http = httpx.Client(
            base_url=api_url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        accept: str = JSON,
        content: Iterator[bytes] | None = None,
        content_type: str | None = None,
        content_length: int | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
    ) -> httpx.Response:
        """Send one request; a transport failure or an error status raises ``CtlError``."""
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                content=content,
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise CtlError(f"cannot reach node API at {self.api_url}: {error}") from error
        except httpx.TransportError as error:
            raise CtlError(f"request to {self.api_url} failed: {error}") from error
        if response.is_error:
            raise api_error(response)
        return response

    def upload(
        self,
        path: str,
        file: Path,
        *,
        content_type: str,
        on_sent: Callable[[bytes], None],
    ) -> httpx.Response:
        """PUT a file as a streamed body. The node answers only once it has processed the
        whole file, so only connecting and sending are bounded by the usual timeout.
        OSError if the file cannot be read."""
        with file.open("rb") as handle:
            return self.request(
                "PUT",
                path,
                content=file_chunks(handle, on_sent),
                content_type=content_type,
                content_length=os.fstat(handle.fileno()).st_size,
                timeout=httpx.Timeout(TIMEOUT, read=None),
            )


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise CtlError(f"the node sent a response that is not JSON: {error}") from error
