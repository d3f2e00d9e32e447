"""WebSocket /api/v1/stream: a signed-in user receives their own events, never another's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from tests.http.conftest import make_app
from tests.http.support import ALICE, BOB, auth, token_for


@pytest.fixture
def client():
    app, container = make_app()
    with TestClient(app=app) as test_client:
        yield test_client
        test_client.blocking_portal.call(container.close)  # on the loop the app ran on


def create_target(client: TestClient, user: str, symbol: str) -> str:
    launch = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = client.post(
        "/api/v1/targets", headers=auth(user), json={"symbol": symbol, "launch_at": launch, "quote_amount": "10"}
    )
    assert r.status_code == 201, r.text
    return r.json()["target_id"]


def events_until(ws, count: int) -> list[dict]:  # noqa: ANN001
    got = []
    while len(got) < count:
        frame = json.loads(ws.receive_text(timeout=5))
        assert frame["kind"] == "event", frame
        got.append(frame["event"])
    return got


def test_live_events_are_the_users_own(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/stream") as ws:
        ws.send_text(json.dumps({"token": token_for(ALICE)}))
        assert json.loads(ws.receive_text(timeout=5)) == {"kind": "ready", "user_id": ALICE}
        create_target(client, BOB, "BOBUSDT")  # recorded first, never sent to alice
        mine = create_target(client, ALICE, "ALICEUSDT")
        events = events_until(ws, 3)
        assert {e["stream_id"] for e in events} == {f"target-{mine}"}
        assert [e["type"] for e in events] == ["SnipeTargetCreated", "SnipeTargetReady", "SnipeScheduled"]


def test_replay_after_a_position_then_live(client: TestClient) -> None:
    first = create_target(client, ALICE, "ONEUSDT")
    create_target(client, BOB, "TWOUSDT")
    with client.websocket_connect("/api/v1/stream?after=0", headers=auth(ALICE)) as ws:
        assert json.loads(ws.receive_text(timeout=5))["kind"] == "ready"
        replayed = events_until(ws, 3)
        assert {e["stream_id"] for e in replayed} == {f"target-{first}"}
        second = create_target(client, ALICE, "THREEUSDT")
        live = events_until(ws, 3)
        assert {e["stream_id"] for e in live} == {f"target-{second}"}
        positions = [e["position"] for e in replayed + live]
        assert positions == sorted(positions) and len(set(positions)) == 6


def test_a_bad_token_closes_with_4401(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/stream") as ws:
        ws.send_text(json.dumps({"token": "forged"}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text(timeout=5)
    assert closed.value.code == 4401
    with client.websocket_connect("/api/v1/stream") as ws:
        ws.send_text("not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text(timeout=5)
    assert closed.value.code == 4401
