"""Each resource through the HTTP API, as a signed-in user sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient

from application.ports import AgentStatus, AgentStatusBoard, EventStore
from tests.http.conftest import api_settings, make_app
from tests.http.support import ALICE, BOB, auth, seed_position

A = auth(ALICE)


def launch_in(hours: float = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def settings_body(**changes) -> dict:  # noqa: ANN003
    body = {
        "auto_snipe": True, "quote_amount": "25", "quote_asset": "USDT", "exit_strategy": "aggressive",
        "min_confidence": "0.9", "only_tickers": [], "skip_tickers": ["SCAM"],
        "risk": {"max_quote_per_snipe": "50", "max_concurrent_positions": 2, "max_daily_loss": "20",
                 "max_total_exposure": "100", "allowed_quote_assets": ["USDT"], "live": False},
        "max_entry_price": None,  # no entry cap: market buys (issue 14)
    }
    body.update(changes)
    return body


async def test_target_created_appears_in_the_list_then_is_updated_and_cancelled(client: AsyncTestClient) -> None:
    r = await client.post("/api/v1/targets", headers=A,
                          json={"symbol": "NEWUSDT", "launch_at": launch_in(), "quote_amount": "10.5"})
    assert r.status_code == 201, r.text
    target = r.json()
    assert target["status"] == "scheduled" and target["quote_amount"] == "10.5" and target["symbol"] == "NEWUSDT"
    listed = (await client.get("/api/v1/targets", headers=A)).json()["items"]
    assert [t["target_id"] for t in listed] == [target["target_id"]]

    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A,
                           json={"quote_amount": "12", "exit_strategy": "scalping"})
    assert r.status_code == 200, r.text
    assert (r.json()["quote_amount"], r.json()["exit_strategy"]) == ("12", "scalping")

    r = await client.post(
        f"/api/v1/targets/{target['target_id']}/cancel", headers=A, json={"reason": "changed my mind"}
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["reason"] == "changed my mind"
    assert (await client.get("/api/v1/targets?status=scheduled", headers=A)).json()["items"] == []
    assert len((await client.get("/api/v1/targets?status=cancelled", headers=A)).json()["items"]) == 1
    # cancelling again is a conflict, not a crash
    r = await client.post(f"/api/v1/targets/{target['target_id']}/cancel", headers=A)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    history = (await client.get(f"/api/v1/targets/{target['target_id']}/history", headers=A)).json()
    assert [e["type"] for e in history] == [
        "SnipeTargetCreated", "SnipeTargetReady", "SnipeScheduled", "SnipeTargetAmended", "SnipeTargetCancelled"
    ]
    assert history[0]["data"]["quote_amount"] == "10.5"  # decimals stay strings in the history too


async def test_target_input_errors(client: AsyncTestClient) -> None:
    r = await client.post("/api/v1/targets", headers=A, json={"symbol": "NEWUSDT", "launch_at": launch_in(-2),
                                                             "quote_amount": "10"})
    assert r.status_code == 422 and "snipe window" in r.json()["detail"]
    r = await client.post("/api/v1/targets", headers=A, json={"symbol": "NEWUSDT", "launch_at": launch_in(),
                                                             "quote_amount": 10.5})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    r = await client.post("/api/v1/targets", headers=A, json={"symbol": "NEWUSDT", "launch_at": launch_in(),
                                                             "quote_amount": "10", "exit_strategy": "nope"})
    assert r.status_code == 422 and "unknown exit strategy" in r.json()["detail"]
    body = {"symbol": "DUPUSDT", "launch_at": launch_in(), "quote_amount": "10"}
    assert (await client.post("/api/v1/targets", headers=A, json=body)).status_code == 201
    r = await client.post("/api/v1/targets", headers=A, json=body)
    assert r.status_code == 409 and "exists already" in r.json()["detail"]


async def test_settings_round_trip_and_validation(client: AsyncTestClient) -> None:
    defaults = (await client.get("/api/v1/settings", headers=A)).json()
    assert defaults["auto_snipe"] is False and defaults["exit_strategy"] == "balanced"
    r = await client.put("/api/v1/settings", headers=A, json=settings_body())
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/settings", headers=A)).json() == r.json() == settings_body()
    # domain rules: 422 with the rule named; nothing changes
    for bad, words in (
        (settings_body(quote_amount="60"), "per-snipe limit"),
        (settings_body(quote_asset="BTC"), "not among the allowed"),
        (settings_body(exit_strategy="mine"), "unknown exit strategy"),
        (settings_body(min_confidence="1.5"), "between 0 and 1"),
        (settings_body(only_tickers=["SCAM"]), "both wanted and skipped"),
    ):
        r = await client.put("/api/v1/settings", headers=A, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert words in r.json()["detail"]
    # shape errors: 400
    for bad in (settings_body(quote_amount=25), settings_body(extra=1), {"auto_snipe": True},
                settings_body(quote_amount="-5")):
        r = await client.put("/api/v1/settings", headers=A, json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert (await client.get("/api/v1/settings", headers=A)).json() == settings_body()
    assert (await client.get("/api/v1/settings", headers=auth(BOB))).json()["auto_snipe"] is False


async def test_auto_snipe_via_the_api_reaches_the_trader_directory() -> None:
    from application.trader_directory import EventSourcedTraderDirectory

    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        assert (await client.put("/api/v1/settings", headers=A, json=settings_body())).status_code == 200
        directory = EventSourcedTraderDirectory(await container.get(EventStore))
        snipers = await directory.auto_snipers()
        assert [(s.user_id, s.quote_amount, s.exit_strategy) for s in snipers] == [(ALICE, 25, "aggressive")]
        assert "SCAM" in snipers[0].skip_tickers and not snipers[0].wants("SCAM", "USDT")
    await container.close()


async def test_exit_strategies_presets_and_own(client: AsyncTestClient) -> None:
    names = [s["name"] for s in (await client.get("/api/v1/exit-strategies", headers=A)).json()]
    assert names[:5] == ["conservative", "balanced", "aggressive", "scalping", "diamond"]
    plan = {"take_profits": [{"gain_percent": "15", "sell_percent": "60"},
                             {"gain_percent": "40", "sell_percent": "40"}],
            "stop_loss_percent": "7", "trailing_stop_percent": "12"}
    r = await client.put("/api/v1/exit-strategies/my-ladder", headers=A, json=plan)
    assert r.status_code == 200 and r.json()["preset"] is False and r.json()["stop_loss_percent"] == "7"
    r = await client.put("/api/v1/exit-strategies/balanced", headers=A, json=plan)
    assert r.status_code == 422 and "preset" in r.json()["detail"]
    r = await client.put("/api/v1/exit-strategies/too-much", headers=A,
                         json={"take_profits": [{"gain_percent": "10", "sell_percent": "80"},
                                                {"gain_percent": "20", "sell_percent": "80"}],
                               "stop_loss_percent": "5"})
    assert r.status_code == 422 and "more than 100%" in r.json()["detail"]
    r = await client.put("/api/v1/settings", headers=A, json=settings_body(exit_strategy="my-ladder"))
    assert r.status_code == 200
    r = await client.delete("/api/v1/exit-strategies/my-ladder", headers=A)
    assert r.status_code == 409 and "default" in r.json()["detail"]
    assert (await client.put("/api/v1/settings", headers=A, json=settings_body())).status_code == 200
    assert (await client.delete("/api/v1/exit-strategies/my-ladder", headers=A)).status_code == 204
    assert (await client.get("/api/v1/exit-strategies/my-ladder", headers=A)).status_code == 404


async def test_credentials_never_come_back(client: AsyncTestClient) -> None:
    assert (await client.get("/api/v1/credentials", headers=A)).status_code == 404
    secret = "S3cr3tS3cr3tS3cr3t"
    r = await client.put("/api/v1/credentials", headers=A, json={"api_key": "goodKEY0123456789", "secret_key": secret})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"api_key_hint", "key_version", "stored_at", "updated_at"}
    assert r.json()["api_key_hint"] == "good…6789"
    got = await client.get("/api/v1/credentials", headers=A)
    assert got.status_code == 200 and secret not in got.text and "goodKEY0123456789" not in got.text
    r = await client.post("/api/v1/credentials/test", headers=A)
    assert r.json() == {"ok": True, "can_trade": False, "detail": "account read"}
    r = await client.post("/api/v1/credentials/test", headers=A, json={"api_key": "badKEY0123456789",
                                                                      "secret_key": "whatever123"})
    assert r.status_code == 200 and r.json()["ok"] is False
    # rotate: PUT again replaces
    r = await client.put("/api/v1/credentials", headers=A, json={"api_key": "goodtradeKEY999", "secret_key": secret})
    assert r.json()["api_key_hint"] == "goo…999"
    r = await client.put("/api/v1/credentials", headers=A, json={"api_key": "short", "secret_key": "has space in it"})
    assert r.status_code == 400 and "short" not in r.text and "space in it" not in r.text
    assert (await client.get("/api/v1/credentials", headers=auth(BOB))).status_code == 404
    assert (await client.delete("/api/v1/credentials", headers=A)).status_code == 204
    assert (await client.get("/api/v1/credentials", headers=A)).status_code == 404
    assert (await client.delete("/api/v1/credentials", headers=A)).status_code == 404  # records nothing
    audit = (await client.get("/api/v1/audit", headers=A)).json()["items"]
    assert [e["type"] for e in audit] == ["CredentialsStored", "CredentialsRotated", "CredentialsDeleted"]
    assert audit[-1]["data"] == {"key_version": audit[1]["data"]["key_version"], "api_key_hint": "goo…999"}
    assert audit[-1]["stream_id"] == audit[0]["stream_id"] and audit[-1]["version"] == 3
    assert secret not in str(audit) and "goodtradeKEY999" not in str(audit)
    assert (await client.get("/api/v1/audit", headers=auth(BOB))).json()["items"] == []


async def test_emergency_stop_activate_and_clear(client: AsyncTestClient) -> None:
    assert (await client.get("/api/v1/emergency-stop", headers=A)).json()["active"] is False
    r = await client.post("/api/v1/emergency-stop", headers=A, json={"reason": "market looks wrong"})
    assert r.status_code == 200 and r.json()["active"] is True and "market looks wrong" in r.json()["reason"]
    r = await client.post("/api/v1/emergency-stop", headers=A, json={"reason": "again"})  # a second press is no error
    assert r.status_code == 200 and r.json()["active_since"] is not None and "nothing new recorded" in r.json()["note"]
    assert (await client.get("/api/v1/emergency-stop", headers=auth(BOB))).json()["active"] is False
    assert (await client.get("/api/v1/portfolio", headers=A)).json()["halted"].startswith("emergency stop")
    r = await client.post("/api/v1/emergency-stop", headers=A, json={"reason": "   "})
    assert r.status_code in (400, 422)
    assert (await client.delete("/api/v1/emergency-stop", headers=A)).json()["active"] is False
    r = await client.delete("/api/v1/emergency-stop", headers=A)  # none to clear: says so
    assert r.status_code == 200 and r.json()["note"] == "no emergency stop of yours was active; nothing to clear"


async def test_portfolio_positions_trades_and_listings() -> None:
    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        store = await container.get(EventStore)
        target_id, position_id = await seed_position(store, ALICE, "PNL", datetime.now(UTC) - timedelta(minutes=1))
        p = (await client.get("/api/v1/portfolio", headers=A)).json()
        assert p["open_positions"] == 1 and p["invested"] == "10.01" and p["positions"][0]["position_id"] == position_id
        assert p["positions"][0]["entry_price"] == "0.5" and p["positions"][0]["quantity"] == "20"
        assert (await client.get(f"/api/v1/positions/{position_id}", headers=A)).json()["target_id"] == target_id
        assert len((await client.get("/api/v1/positions?open_only=true", headers=A)).json()["items"]) == 1
        trades = (await client.get("/api/v1/trades", headers=A)).json()["items"]
        assert [(t["side"], t["quote_amount"]) for t in trades] == [("BUY", "10.01")]
        assert (await client.get("/api/v1/portfolio", headers=auth(BOB))).json()["positions"] == []
        assert (await client.get("/api/v1/pnl/daily", headers=A)).json() == []
        assert (await client.get("/api/v1/pnl/daily?from=2025-02-01&to=2025-01-01", headers=A)).status_code == 400
        assert (await client.get("/api/v1/listings", headers=A)).json()["items"] == []
        assert (await client.get("/api/v1/calendar", headers=A)).json()["items"] == []
    await container.close()


async def test_agents_report_heartbeats_and_staleness() -> None:
    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        board = await container.get(AgentStatusBoard)
        now = datetime.now(UTC)
        await board.beat(AgentStatus("calendar", True, now, 0, "polled", "w1"))
        await board.beat(AgentStatus("strategy", True, now - timedelta(minutes=5), 2, "", "w1"))
        agents = {a["name"]: a for a in (await client.get("/api/v1/agents", headers=A)).json()}
        assert agents["calendar"]["healthy"] is True and agents["calendar"]["stale"] is False
        assert agents["strategy"]["healthy"] is False and agents["strategy"]["stale"] is True
        assert agents["strategy"]["restarts"] == 2
    await container.close()


async def test_rate_limit_answers_429_with_retry_after() -> None:
    app, container = make_app(api_settings(SNIPER_RATE_LIMIT_PER_MINUTE="3"))
    async with AsyncTestClient(app=app) as client:
        codes = [(await client.get("/api/v1/me", headers=A)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await client.get("/api/v1/me", headers=A)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["error"] == "rate_limited"
        assert (await client.get("/api/v1/me", headers=auth(BOB))).status_code == 200  # per user
        assert (await client.get("/health")).status_code == 200  # probes are not limited
    await container.close()


async def test_body_too_large_is_413() -> None:
    app, container = make_app(api_settings(SNIPER_MAX_BODY_BYTES="2048", SNIPER_RATE_LIMIT_PER_MINUTE="0"))
    async with AsyncTestClient(app=app) as client:
        r = await client.put("/api/v1/settings", headers={**A, "Content-Type": "application/json"},
                             content=b'{"auto_snipe": true, "pad": "' + b"x" * 4000 + b'"}')
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    await container.close()


async def test_cors_only_for_configured_origins() -> None:
    app, container = make_app(api_settings(SNIPER_CORS_ORIGINS="https://app.example.com/",
                                           SNIPER_RATE_LIMIT_PER_MINUTE="0"))
    async with AsyncTestClient(app=app) as client:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        r = await client.options("/api/v1/settings", headers=preflight)
        assert r.status_code in (200, 204), r.text
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "PUT" in r.headers["access-control-allow-methods"]
        r = await client.options("/api/v1/settings", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        r = await client.get("/api/v1/me", headers={**A, "Origin": "https://app.example.com"})
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    await container.close()
    app, container = make_app()  # default: no origins at all
    async with AsyncTestClient(app=app) as client:
        r = await client.get("/api/v1/me", headers={**A, "Origin": "https://app.example.com"})
        assert "access-control-allow-origin" not in r.headers
    await container.close()


async def test_security_headers_everywhere(client: AsyncTestClient) -> None:
    for path, headers in (("/api/v1/me", A), ("/api/v1/me", {}), ("/nope", {}), ("/health", {}),
                          ("/schema/openapi.json", {}), ("/schema/swagger", {})):
        r = await client.get(path, headers=headers)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'", path


async def test_errors_say_what_is_wrong_without_internals() -> None:
    app, container = make_app()

    async def boom(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("password=hunter2 at /srv/secret/path.py line 12")

    async with AsyncTestClient(app=app) as client:
        from application.ports import ReadModels

        read_models = await container.get(ReadModels)
        read_models.positions = boom  # type: ignore[method-assign]
        r = await client.get("/api/v1/positions", headers=A)
        assert r.status_code == 500
        body = r.json()
        assert body["error"] == "internal_error" and body["error_id"] and body["error_id"] in body["detail"]
        assert "hunter2" not in r.text and "Traceback" not in r.text and "secret" not in r.text
        r = await client.get("/api/v1/nothing-here", headers=A)
        assert r.status_code == 404 and set(r.json()) == {"type", "title", "status", "detail", "error", "error_id"}
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.post(
            "/api/v1/targets", headers={**A, "Content-Type": "application/json"}, content=b"{not json"
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
    await container.close()



async def test_metrics_are_public_and_count_the_requests(client) -> None:  # noqa: ANN001
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/v1/portfolio")).status_code == 401
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'sniper_http_requests_total{method="GET",status="200"}' in text
    assert 'sniper_http_requests_total{method="GET",status="401"}' in text
