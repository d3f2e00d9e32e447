"""How the API reads what a client sends: JSON nested too deeply and a body cut short are the
client's fault, answered 4xx in one log line, never a 500 with a traceback.

msgspec decodes nested JSON recursively and raises RecursionError past Python's recursion limit
(about a thousand levels, a 2 KB body). No request of this API nests more than a few levels, so
that depth is refused as malformed wherever a client's JSON is decoded: request bodies (every
JSON route reads them through `ApiRequest.json`) and the live stream's messages (`decode_message`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, InternalServerException
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT

log = logging.getLogger("sniper.http")

T = TypeVar("T")

TOO_DEEP = "the JSON is nested too deeply"


class BodyTooDeep(ClientException):
    """400: the JSON body nests deeper than the decoder can follow."""


class BodyCutShort(ClientException):
    """The connection closed before the request body was complete (the client left, or the server's
    body timeout closed it): nobody reads this answer, it only keeps the error out of the 500s."""

    status_code = HTTP_408_REQUEST_TIMEOUT


class ApiRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            log.info("refused %s %s: %s", self.method, self.url.path, TOO_DEEP)
            raise BodyTooDeep(detail=f"{TOO_DEEP}; no request of this API nests more than a few levels") from None

    async def body(self) -> bytes:
        receive = self.receive
        gone = False

        async def noting_disconnect() -> Any:
            nonlocal gone
            message = await receive()
            gone = message["type"] == "http.disconnect"
            return message

        self.receive = noting_disconnect
        try:
            return await super().body()
        except InternalServerException:
            if gone:  # Litestar reports a disconnect mid-body as its own (500) error
                raise BodyCutShort(detail="the connection closed before the request body was complete") from None
            raise
        finally:
            self.receive = receive


def decode_message(decode: Callable[[str | bytes], T], raw: str | bytes) -> T:
    """`decode(raw)` for a message a client sent; nesting too deep is a msgspec.DecodeError like any
    other malformed JSON."""
    try:
        return decode(raw)
    except RecursionError:
        raise msgspec.DecodeError(TOO_DEEP) from None
