"""One walk over every operation of the OpenAPI document: without a valid token every
route but the public ones answers 401; with another user's token, a route naming one of
alice's resources answers 404 (or 403) and leaves the resource as it was."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from application.ports import EventStore
from tests.http.conftest import make_app
from tests.http.support import ALICE, BOB, auth, seed_position

PUBLIC = {"/health", "/ready", "/api/v1/auth/login", "/api/v1/auth/callback"}  # probes and the sign-in flow
METHODS = ("get", "post", "put", "patch", "delete")
# Bodies good enough to pass validation, so the answer is decided by who asks, not by the shape.
BODIES = {
    ("put", "/api/v1/exit-strategies/{name}"): {"take_profits": [{"gain_percent": "5", "sell_percent": "50"}],
                                                 "stop_loss_percent": "5"},
    ("patch", "/api/v1/targets/{target_id}"): {"quote_amount": "12"},
    ("post", "/api/v1/targets/{target_id}/cancel"): {"reason": "not mine"},
}


def operations(schema: dict) -> list[tuple[str, str]]:
    return sorted((method, path) for path, item in schema["paths"].items() for method in METHODS if method in item)


@pytest.fixture
async def world():
    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        store = await container.get(EventStore)
        now = datetime.now(UTC)
        target_id, position_id = await seed_position(store, ALICE, "WALK", now - timedelta(minutes=5))
        launch = (now + timedelta(hours=1)).isoformat()
        r = await client.post("/api/v1/targets", headers=auth(ALICE),
                              json={"symbol": "OPENUSDT", "launch_at": launch, "quote_amount": "10"})
        assert r.status_code == 201, r.text
        open_target = r.json()["target_id"]
        r = await client.put("/api/v1/exit-strategies/alices-plan", headers=auth(ALICE),
                             json={"take_profits": [{"gain_percent": "30", "sell_percent": "100"}],
                                   "stop_loss_percent": "8"})
        assert r.status_code == 200, r.text
        yield client, app, {"target_id": open_target, "filled_target_id": target_id, "position_id": position_id,
                            "name": "alices-plan", "coin_id": "walk-1"}
    await container.close()


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


async def test_every_route_is_listed_and_the_walk_covers_them(world) -> None:
    client, app, _ = world
    ops = operations(app.openapi_schema.to_schema())
    api_ops = [op for op in ops if op[1].startswith("/api/v1/")]
    assert len(api_ops) >= 28  # the resources of the issue, each with its verbs
    assert ("get", "/api/v1/portfolio") in ops and ("post", "/api/v1/emergency-stop") in ops


async def test_no_token_or_a_bad_token_is_401_everywhere_but_the_public_routes(world) -> None:
    client, app, ids = world
    checked = 0
    for method, path in operations(app.openapi_schema.to_schema()):
        if path in PUBLIC:
            continue
        url = concrete(path, ids)
        body = BODIES.get((method, path), {})
        for headers in ({}, {"Authorization": "Bearer not-a-valid-token"}, {"Authorization": "Basic YTpi"}):
            r = await client.request(method.upper(), url, headers=headers,
                                     json=body if method in ("post", "put", "patch") else None)
            assert r.status_code == 401, (method, url, headers, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"] == "unauthorized"
            checked += 1
    assert checked >= 3 * 28


async def test_public_routes_answer_without_a_token(world) -> None:
    client, _, _ = world
    for path in ("/health", "/ready", "/schema/openapi.json"):
        assert (await client.get(path)).status_code == 200, path


async def test_another_users_resources_are_404_and_stay_untouched(world) -> None:
    client, app, ids = world
    before = {p: (await client.get(p, headers=auth(ALICE))).json() for p in
              (f"/api/v1/targets/{ids['target_id']}", "/api/v1/exit-strategies/alices-plan", "/api/v1/portfolio")}
    walked = 0
    for method, path in operations(app.openapi_schema.to_schema()):
        params = re.findall(r"\{(\w+)\}", path)
        if not params:
            continue
        for target_key in (("target_id", "filled_target_id") if "target_id" in params else (None,)):
            id_map = dict(ids)
            if target_key:
                id_map["target_id"] = ids[target_key]
            url = concrete(path, id_map)
            body = BODIES.get((method, path))
            r = await client.request(method.upper(), url, headers=auth(BOB), json=body)
            walked += 1
            if (method, path) == ("put", "/api/v1/exit-strategies/{name}"):
                # Names are per user: bob saves a plan of his own under that name, alice's stays.
                assert r.status_code == 200, r.text
                continue
            assert r.status_code in (403, 404), (method, url, r.status_code, r.text)
            assert set(r.json()) >= {"error", "detail"}
    assert walked >= 9
    after = {p: (await client.get(p, headers=auth(ALICE))).json() for p in before}
    for answers in (before, after):
        answers["/api/v1/portfolio"].pop("as_of_position")  # bob's own writes move the history on
    assert after == before
    # and bob's lists never show alice's things
    assert (await client.get("/api/v1/targets", headers=auth(BOB))).json()["items"] == []
    assert (await client.get("/api/v1/positions", headers=auth(BOB))).json()["items"] == []
    bobs_audit = (await client.get("/api/v1/audit", headers=auth(BOB))).json()["items"]
    assert all(e["stream_id"] in ("trader-bob",) for e in bobs_audit)
