"""Issue 15, the API behind the cockpit: close a position by hand, the balances (paper and live,
on the MEXC fake), open positions at the current price, the status in one answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from litestar.testing import AsyncTestClient

from application.ports import EventStore
from domain.position import position_stream
from entrypoints.config import Settings
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol
from tests.http.conftest import api_settings, make_app
from tests.http.support import ALICE, BOB, auth, seed_position
from tests.mexc.support import on_own_loop

A = auth(ALICE)
KEY, SECRET = "mx0vGoodKey0001", "GoodSecret000001"


def settings_body(live: bool) -> dict:
    return {
        "auto_snipe": False, "quote_amount": "10", "quote_asset": "USDT", "exit_strategy": "balanced",
        "min_confidence": "0.8", "only_tickers": [], "skip_tickers": [],
        "risk": {"max_quote_per_snipe": "50", "max_concurrent_positions": 2, "max_daily_loss": "20",
                 "max_total_exposure": "100", "allowed_quote_assets": ["USDT"], "live": live},
    }


@pytest.fixture
def mexc() -> Iterator[FakeMexcServer]:
    """The MEXC fake on its own loop in a thread: the test client runs the app on another thread
    while it blocks this test's loop (litestar.testing), so a fake on this loop could not answer."""
    with on_own_loop(FakeMexcServer(api_key=KEY, api_secret=SECRET, balances={"USDT": "1234.5", "NEW": "0"},
                                    symbols=[FakeSymbol("NEWUSDT", "NEW", price=Decimal("0.6"))])) as fake:
        yield fake


def on_mexc(base_url: str) -> Settings:
    return api_settings(MEXC_BASE_URL=base_url, SNIPER_MARKET="mexc")


@pytest.fixture
async def app_on_mexc(mexc: FakeMexcServer) -> AsyncIterator[tuple[AsyncTestClient, str]]:
    """An API on the MEXC fake's prices, with alice's open paper position in NEWUSDT (20 at 0.5, cost 10.01)."""
    app, container = make_app(on_mexc(mexc.base_url))
    async with AsyncTestClient(app=app) as client:
        store = await container.get(EventStore)
        _, position_id = await seed_position(store, ALICE, "NEW", datetime.now(UTC) - timedelta(minutes=1))
        client.app.state.store = store
        yield client, position_id
    await container.close()


async def exits_sent(client: AsyncTestClient, position_id: str) -> int:
    store: EventStore = client.app.state.store
    return sum(1 for r in await store.load(position_stream(position_id)) if r.event.type_name == "ExitOrderSubmitted")


class TestClosePosition:
    async def test_close_sells_what_is_held_and_answers_the_position_after_it(
        self, app_on_mexc: tuple[AsyncTestClient, str]
    ) -> None:
        client, pid = app_on_mexc
        r = await client.post(f"/api/v1/positions/{pid}/close", headers=A)

        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["state"], body["sold"], body["price"], body["already"]) == ("closed", "20.00", "0.6", False)
        # 12 of proceeds, less the paper taker fee (0.006), less the 10.01 it cost
        assert body["realised_pnl"] == body["position"]["realised_pnl"] == "1.9840000"
        assert body["position"]["status"] == "closed" and body["position"]["remaining"] == "0.00"
        assert body["position"]["exits"] == ["ManualExitFilled"]
        # the read models moved with it
        assert (await client.get(f"/api/v1/positions/{pid}", headers=A)).json()["status"] == "closed"
        audit = (await client.get("/api/v1/audit", headers=A)).json()["items"]
        submitted = [e for e in audit if e["type"] == "ExitOrderSubmitted"]
        assert submitted[0]["data"]["reason"] == "manual" and submitted[0]["data"]["requested_by"] == ALICE

    async def test_a_second_close_answers_200_with_its_state_and_sells_nothing(
        self, app_on_mexc: tuple[AsyncTestClient, str]
    ) -> None:
        client, pid = app_on_mexc
        first = (await client.post(f"/api/v1/positions/{pid}/close", headers=A)).json()
        r = await client.post(f"/api/v1/positions/{pid}/close", headers=A)

        assert r.status_code == 200, r.text
        again = r.json()
        assert again["already"] is True and again["state"] == "closed"
        assert (again["sold"], again["price"], again["realised_pnl"]) == (first["sold"], first["price"],
                                                                         first["realised_pnl"])
        assert await exits_sent(client, pid) == 1

    async def test_another_users_position_and_an_unknown_id_are_404(
        self, app_on_mexc: tuple[AsyncTestClient, str]
    ) -> None:
        client, pid = app_on_mexc
        r = await client.post(f"/api/v1/positions/{pid}/close", headers=auth(BOB))
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
        assert (await client.post("/api/v1/positions/p-nothing/close", headers=A)).status_code == 404
        assert await exits_sent(client, pid) == 0

    async def test_refused_while_a_persons_stop_holds_with_who_when_and_why(
        self, app_on_mexc: tuple[AsyncTestClient, str]
    ) -> None:
        client, pid = app_on_mexc
        assert (await client.post("/api/v1/emergency-stop", headers=A, json={"reason": "market looks wrong"})
                ).status_code == 200

        r = await client.post(f"/api/v1/positions/{pid}/close", headers=A)

        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"emergency stop pressed by {ALICE} at ") and detail.endswith(": market looks wrong")
        assert await exits_sent(client, pid) == 0
        assert (await client.delete("/api/v1/emergency-stop", headers=A)).status_code == 200
        assert (await client.post(f"/api/v1/positions/{pid}/close", headers=A)).json()["state"] == "closed"

    async def test_without_a_market_the_close_is_refused_with_why(self) -> None:
        app, container = make_app()  # a replay's API: the prices are in the replay's worker
        async with AsyncTestClient(app=app) as client:
            _, pid = await seed_position(await container.get(EventStore), ALICE, "NEW", datetime.now(UTC))
            r = await client.post(f"/api/v1/positions/{pid}/close", headers=A)
            assert r.status_code == 409 and "no market to sell on" in r.json()["detail"], r.text
        await container.close()


class TestBalances:
    async def test_paper_balances_come_from_the_trade_history(self, app_on_mexc: tuple[AsyncTestClient, str]) -> None:
        client, pid = app_on_mexc
        r = await client.get("/api/v1/balances", headers=A)

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mode"] == "paper" and datetime.fromisoformat(body["as_of"]).tzinfo is not None
        assert body["balances"] == [{"asset": "NEW", "free": "20", "locked": "0"},
                                    {"asset": "USDT", "free": "989.99", "locked": "0"}]
        await client.post(f"/api/v1/positions/{pid}/close", headers=A)
        after = (await client.get("/api/v1/balances", headers=A)).json()["balances"]
        assert after == [{"asset": "USDT", "free": "1001.984", "locked": "0"}]  # 1000 + the realised 1.984
        assert (await client.get("/api/v1/balances", headers=auth(BOB))).json()["balances"] == [
            {"asset": "USDT", "free": "1000", "locked": "0"}]

    async def test_live_balances_are_read_from_mexc_with_the_users_keys(
        self, app_on_mexc: tuple[AsyncTestClient, str], mexc: FakeMexcServer
    ) -> None:
        client, _ = app_on_mexc
        assert (await client.put("/api/v1/settings", headers=A, json=settings_body(live=True))).status_code == 200
        r = await client.get("/api/v1/balances", headers=A)
        assert r.status_code == 409 and "no MEXC API keys stored" in r.json()["detail"], r.text

        stored = await client.put("/api/v1/credentials", headers=A, json={"api_key": KEY, "secret_key": SECRET})
        assert stored.status_code == 200, stored.text
        r = await client.get("/api/v1/balances", headers=A)

        assert r.status_code == 200, r.text
        assert r.json()["mode"] == "live"
        assert r.json()["balances"] == [{"asset": "USDT", "free": "1234.5", "locked": "0"}]
        assert mexc.hits["GET /api/v3/account"] >= 1

    async def test_mexc_unreachable_is_503_with_a_one_line_reason(self) -> None:
        app, container = make_app()  # MEXC at a closed port (tests/http/conftest.py)
        async with AsyncTestClient(app=app, timeout=60) as client:
            assert (await client.put("/api/v1/settings", headers=A, json=settings_body(live=True))).status_code == 200
            await client.put("/api/v1/credentials", headers=A, json={"api_key": KEY, "secret_key": SECRET})
            r = await client.get("/api/v1/balances", headers=A)
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert detail.startswith("MEXC balances unavailable: ") and "\n" not in detail
            assert SECRET not in r.text and KEY not in r.text
        await container.close()


class TestPricesAndStatus:
    async def test_the_portfolio_prices_open_positions(self, app_on_mexc: tuple[AsyncTestClient, str]) -> None:
        client, pid = app_on_mexc
        body = (await client.get("/api/v1/portfolio", headers=A)).json()

        [position] = body["positions"]
        assert (position["current_price"], position["unrealised_pnl"]) == ("0.6", "1.99")  # 20 x 0.6 - 10.01
        assert body["unrealised_pnl"] == "1.99"
        await client.post(f"/api/v1/positions/{pid}/close", headers=A)
        closed = (await client.get("/api/v1/portfolio", headers=A)).json()
        assert closed["unrealised_pnl"] is None and closed["positions"][0]["current_price"] is None

    async def test_a_replays_api_leaves_positions_unpriced(self) -> None:
        app, container = make_app()
        async with AsyncTestClient(app=app) as client:
            await seed_position(await container.get(EventStore), ALICE, "NEW", datetime.now(UTC))
            body = (await client.get("/api/v1/portfolio", headers=A)).json()
            assert body["unrealised_pnl"] is None and body["positions"][0]["current_price"] is None
        await container.close()

    async def test_status_answers_halted_holdings_and_pnl_in_one(
        self, app_on_mexc: tuple[AsyncTestClient, str]
    ) -> None:
        client, pid = app_on_mexc
        status = (await client.get("/api/v1/status", headers=A)).json()
        assert status["halted"] is False and status["stops"] == []
        assert [p["position_id"] for p in status["open_positions"]] == [pid]
        assert (status["unrealised_pnl"], status["realised_today"], status["open_exposure"]) == ("1.99", "0", "10.01")

        await client.post(f"/api/v1/positions/{pid}/close", headers=A)
        await client.post("/api/v1/emergency-stop", headers=A, json={"reason": "done for today"})
        status = (await client.get("/api/v1/status", headers=A)).json()
        assert status["halted"] is True and status["open_positions"] == []
        [stop] = status["stops"]
        assert (stop["scope"], stop["by"], stop["reason"], stop["automatic"]) == (ALICE, ALICE, "done for today", False)
        assert stop["text"].startswith(f"emergency stop pressed by {ALICE} at ")
        assert (status["realised_today"], status["realised_total"]) == ("1.9840000", "1.9840000")
