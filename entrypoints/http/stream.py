"""WebSocket /api/v1/stream: the signed-in user's own events, live.

Authentication (browsers cannot set headers on a WebSocket): send the token as
`Authorization: Bearer <token>` when the client can, else as the first message
`{"token": "<token>"}` within 10 s of connecting. `?after=<position>` first replays the
user's events recorded after that global position from the event store, then goes live.

Frames (JSON text): `{"kind": "ready", "user_id": ...}` once signed in; then
`{"kind": "event", "event": {position, stream_id, version, occurred_at, correlation_id, type, data}}`
per event; `{"kind": "resync"}` when the live feed dropped us (we catch up from the store and
carry on, so no event is missed). A refused token closes with code 4401, the rate limit with 4429.

Open streams are counted per process: a user past SNIPER_MAX_STREAMS_PER_USER is closed with 1008
(policy violation), any stream past SNIPER_MAX_STREAMS or while the live feed cannot be reached
with 1013 (try again later). The close reason says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Annotated, Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import QueryParameter

from application.errors import SubscriptionLost
from application.identity import Identity, IdentityVerifier, InvalidToken
from application.ports import EventFanout, EventStore, RequestCounter
from entrypoints.http.bodies import decode_message
from entrypoints.http.guards import RATE_WINDOW, bearer_token
from entrypoints.http.schemas import event_json

AUTH_TIMEOUT = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429
CLOSE_BAD_REQUEST = 4400
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
_PAGE = 500


class _Position(msgspec.Struct):
    position: int


class _AuthMessage(msgspec.Struct):
    token: str


_position_of = msgspec.json.Decoder(_Position).decode
_auth_message = msgspec.json.Decoder(_AuthMessage).decode


async def _identity(socket: WebSocket[Any, Any, Any], verifier: IdentityVerifier) -> Identity | None:
    token = bearer_token(socket.headers.get("authorization"))
    if token is None:
        try:
            raw = await asyncio.wait_for(socket.receive_data(mode="text"), timeout=AUTH_TIMEOUT)
            token = decode_message(_auth_message, raw).token
        except (TimeoutError, msgspec.DecodeError, msgspec.ValidationError):
            await socket.close(code=CLOSE_UNAUTHORIZED, reason="send {\"token\": \"<bearer token>\"} first")
            return None
    try:
        return await verifier.verify(token)
    except InvalidToken:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="bearer token refused")
        return None


class OpenStreams:
    """The live streams this process holds open, per user and in all. Each holds a socket and a
    queue; the cap per user keeps one user from taking what every user shares."""

    def __init__(self, per_user: int, total: int) -> None:
        self._per_user_limit = per_user
        self._total_limit = total
        self._per_user: dict[str, int] = {}
        self._total = 0

    def take(self, user_id: str) -> tuple[int, str] | None:
        """Counts one more stream of `user_id`; or, refusing it, (close code, reason)."""
        held = self._per_user.get(user_id, 0)
        if held >= self._per_user_limit:
            return CLOSE_POLICY_VIOLATION, f"at most {self._per_user_limit} live streams per user; close one first"
        if self._total >= self._total_limit:
            return CLOSE_TRY_AGAIN_LATER, "this server holds all the live streams it can; retry later"
        self._per_user[user_id] = held + 1
        self._total += 1
        return None

    def release(self, user_id: str) -> None:
        self._total -= 1
        held = self._per_user.pop(user_id) - 1
        if held:
            self._per_user[user_id] = held


def _frame(event: bytes) -> bytes:
    return b'{"kind":"event","event":' + event + b"}"


@websocket("/api/v1/stream")
async def stream(socket: WebSocket[Any, Any, Any], after: Annotated[int | None, QueryParameter()] = None) -> None:
    container = socket.app.state.dishka_container
    await socket.accept()
    if after is not None and after < 0:
        await socket.close(code=CLOSE_BAD_REQUEST, reason="after must be a position >= 0")
        return
    identity = await _identity(socket, await container.get(IdentityVerifier))
    if identity is None:
        return
    limit = socket.app.state.rate_limit_per_minute
    if limit > 0:
        counter: RequestCounter = await container.get(RequestCounter)
        hit = await counter.hit(f"http:{identity.user_id}", RATE_WINDOW, limit)
        if not hit.allowed:
            retry = max(1, math.ceil(hit.retry_after.total_seconds()))
            await socket.close(code=CLOSE_RATE_LIMITED, reason=f"rate limited; retry after {retry} s")
            return
    open_streams: OpenStreams = socket.app.state.open_streams
    refused = open_streams.take(identity.user_id)
    if refused is not None:
        await socket.close(code=refused[0], reason=refused[1])
        return
    try:
        store: EventStore = await container.get(EventStore)
        fanout: EventFanout = await container.get(EventFanout)
        await socket.send_data(msgspec.json.encode({"kind": "ready", "user_id": identity.user_id}).decode())
        reader = asyncio.create_task(_until_disconnect(socket))
        try:
            await _pump(socket, store, fanout, identity.user_id, after, reader)
        except WebSocketDisconnect:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
    finally:
        open_streams.release(identity.user_id)


async def _until_disconnect(socket: WebSocket[Any, Any, Any]) -> None:
    """Reads (and ignores) what the client sends, returning when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")


async def _pump(socket, store, fanout, user_id, after, reader) -> None:  # noqa: ANN001
    last = after
    while not reader.done():
        try:
            async with fanout.subscribe(user_id) as subscription:
                if last is None:  # live only: what is stored by now is not for us
                    last = await store.last_position()
                while True:  # replay what the store holds after `last` (subscribed first: no gap)
                    page = await store.read_user(user_id, after=last, limit=_PAGE)
                    for rec in page:
                        await socket.send_data(_frame(event_json(rec)).decode())
                        last = rec.position or last
                    if len(page) < _PAGE:
                        break
                events = subscription.__aiter__()
                try:
                    while True:
                        next_event = asyncio.ensure_future(events.__anext__())
                        done, _ = await asyncio.wait({next_event, reader}, return_when=asyncio.FIRST_COMPLETED)
                        if next_event not in done:
                            next_event.cancel()
                            with contextlib.suppress(BaseException):
                                await next_event
                            return
                        raw = next_event.result()
                        position = _position_of(raw).position
                        if position <= last:
                            continue  # already sent by the replay
                        await socket.send_data(_frame(raw).decode())
                        last = position
                except SubscriptionLost:
                    await socket.send_data('{"kind":"resync"}')
                    continue
                except StopAsyncIteration:
                    return
        except SubscriptionLost:  # could not subscribe (a subscription lost later is caught above)
            await socket.close(code=CLOSE_TRY_AGAIN_LATER, reason="the live feed is unavailable; retry later")
            return
