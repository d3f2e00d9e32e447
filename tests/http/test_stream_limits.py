"""One user opening many live streams must not take the API down for everyone else.

The flood: a real `sniper serve` (a subprocess, on Redis, signing in against the local Kinde);
one user opens 150 streams and keeps them open; the others' requests, `/ready` and their own
live streams keep working, and the flooding user is refused past the per-user cap. The caps
and the unreachable feed are also shown in process, on the test client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from dishka import Scope, provide
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adapters.clock import SystemClock
from application.errors import SubscriptionLost
from application.ports import EventFanout
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from tests.adapters.redis_support import delete_prefixed
from tests.http.conftest import api_settings
from tests.http.support import ALICE, BOB, FakeSecurity, auth
from tests.security.fake_kinde import AUDIENCE, FakeKinde, sign

ROOT = Path(__file__).resolve().parents[2]
PER_USER = 5
FLOOD = 150
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(kinde: FakeKinde, subject: str) -> str:
    now = int(time.time())
    return sign(kinde.keys[0], {"iss": kinde.issuer, "aud": [AUDIENCE], "sub": subject, "iat": now, "exp": now + 3600})


@pytest.fixture
def api(kinde: FakeKinde, redis_url: str) -> Iterator[str]:
    """`sniper serve` on a free port with its own Redis prefix; its base URL."""
    prefix = f"h8-flood-{secrets.token_hex(4)}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SNIPER_", "REDIS_", "KINDE_", "DATABASE_"))},
        "DATABASE_URL": "memory://", "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
        "KINDE_DOMAIN": kinde.issuer, "KINDE_AUDIENCE": AUDIENCE, "SNIPER_MAX_STREAMS_PER_USER": str(PER_USER),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "sniper serve did not start within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

        async def cleanup() -> None:
            from adapters.redis import redis_client

            client = redis_client(redis_url)
            try:
                await delete_prefixed(client, prefix)
            finally:
                await client.aclose()

        asyncio.run(cleanup())


async def open_stream(base: str, bearer: str) -> tuple[ClientConnection | None, dict | int]:
    """(the socket, its ready frame) when the stream opened; (None, close code) when refused."""
    ws = await connect(base.replace("http://", "ws://") + "/api/v1/stream",
                       additional_headers={"Authorization": f"Bearer {bearer}"}, open_timeout=30)
    try:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
    except ConnectionClosed as closed:
        await ws.close()
        return None, closed.rcvd.code if closed.rcvd is not None else 1006
    return ws, frame


@contextlib.asynccontextmanager
async def streams(
    base: str, bearer: str, count: int,
) -> AsyncIterator[list[tuple[ClientConnection | None, dict | int]]]:
    opened = await asyncio.gather(*(open_stream(base, bearer) for _ in range(count)), return_exceptions=True)
    try:
        yield opened
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in (o for o in opened if isinstance(o, tuple)) if ws is not None))


@pytest.mark.redis
async def test_one_user_flooding_streams_leaves_everyone_else_served(api: str, kinde: FakeKinde) -> None:
    mallory, alice, bob = token(kinde, "kp_mallory"), token(kinde, "kp_alice"), token(kinde, "kp_bob")
    async with httpx.AsyncClient(base_url=api, timeout=30) as http, streams(api, mallory, FLOOD) as flood:
        failures = [o for o in flood if isinstance(o, BaseException)]
        assert not failures, failures[:3]
        ready = [frame for ws, frame in flood if ws is not None]
        refused = [code for ws, code in flood if ws is None]
        assert len(ready) == PER_USER and all(frame["kind"] == "ready" for frame in ready)
        assert refused == [CLOSE_POLICY_VIOLATION] * (FLOOD - PER_USER)

        # While Mallory holds her streams open, everyone else is served.
        assert (await http.get("/ready")).status_code == 200
        for user in (alice, bob):
            r = await http.get("/api/v1/targets", headers={"Authorization": f"Bearer {user}"})
            assert r.status_code == 200, r.text
        async with streams(api, bob, 1) as [(ws, frame)]:
            assert ws is not None and frame["kind"] == "ready", frame
            launch = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            created = await http.post("/api/v1/targets", headers={"Authorization": f"Bearer {bob}"},
                                      json={"symbol": "BOBUSDT", "launch_at": launch, "quote_amount": "10"})
            assert created.status_code == 201, created.text
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert event["kind"] == "event" and event["event"]["type"] == "SnipeTargetCreated"
        assert (await http.get("/ready")).status_code == 200

    # Her streams closed, Mallory may open new ones again (once the server has seen them go).
    async with asyncio.timeout(30):
        while True:
            async with streams(api, mallory, PER_USER) as again:
                if all(ws is not None for ws, _ in again):
                    break
            await asyncio.sleep(0.2)


# --- in process ------------------------------------------------------------------------------

@contextlib.contextmanager
def api_client(security: FakeSecurity | None = None, **limits: int) -> Iterator[TestClient]:
    """`limits`: SNIPER_* variables."""
    settings = api_settings(**{name: str(value) for name, value in limits.items()})
    container = http_container(settings, SystemClock(), security or FakeSecurity())
    app = create_app(container, settings)
    with TestClient(app=app) as client:
        yield client
        client.blocking_portal.call(container.close)  # on the loop the app ran on


def refusal(client: TestClient, user: str) -> tuple[int, str]:
    with client.websocket_connect("/api/v1/stream", headers=auth(user)) as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text(timeout=5)
    return closed.value.code, closed.value.detail


def test_a_user_past_the_cap_is_refused_with_1008_and_others_are_not() -> None:
    with api_client(SNIPER_MAX_STREAMS_PER_USER=2) as client, \
            client.websocket_connect("/api/v1/stream", headers=auth(ALICE)) as first, \
            client.websocket_connect("/api/v1/stream", headers=auth(ALICE)):
        assert json.loads(first.receive_text(timeout=5))["kind"] == "ready"
        code, reason = refusal(client, ALICE)
        assert code == CLOSE_POLICY_VIOLATION and "at most 2 live streams per user" in reason
        with client.websocket_connect("/api/v1/stream", headers=auth(BOB)) as bob:
            assert json.loads(bob.receive_text(timeout=5))["kind"] == "ready"


def test_a_closed_stream_frees_its_place() -> None:
    with api_client(SNIPER_MAX_STREAMS_PER_USER=1) as client:
        for _ in range(3):
            deadline = time.monotonic() + 10  # the server sees the previous close a moment later
            while True:
                with client.websocket_connect("/api/v1/stream", headers=auth(ALICE)) as ws:
                    try:
                        assert json.loads(ws.receive_text(timeout=5))["kind"] == "ready"
                        break
                    except WebSocketDisconnect as closed:
                        assert closed.code == CLOSE_POLICY_VIOLATION
                assert time.monotonic() < deadline, "a closed stream still counts against its user"
                time.sleep(0.02)


def test_past_the_process_total_a_stream_is_told_to_retry_later() -> None:
    with api_client(SNIPER_MAX_STREAMS=1) as client, \
            client.websocket_connect("/api/v1/stream", headers=auth(ALICE)) as ws:
        assert json.loads(ws.receive_text(timeout=5))["kind"] == "ready"
        code, reason = refusal(client, BOB)
        assert code == CLOSE_TRY_AGAIN_LATER and "retry later" in reason


class _UnreachableFeed:
    async def publish(self, user_id: str, recorded_event_json: bytes) -> None:
        raise SubscriptionLost("Redis is away")

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        raise SubscriptionLost("Redis is away")
        yield  # pragma: no cover


class _FeedDown(FakeSecurity):
    @provide(scope=Scope.APP)
    def fanout(self) -> EventFanout:
        return _UnreachableFeed()


def test_an_unreachable_live_feed_closes_with_1013_not_an_internal_error() -> None:
    with api_client(_FeedDown()) as client, client.websocket_connect("/api/v1/stream", headers=auth(ALICE)) as ws:
        assert json.loads(ws.receive_text(timeout=5))["kind"] == "ready"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text(timeout=5)
    assert closed.value.code == CLOSE_TRY_AGAIN_LATER and "live feed is unavailable" in closed.value.detail
