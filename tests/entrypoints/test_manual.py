"""`sniper snipe` and `sniper mexc check` against the fake MEXC server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from entrypoints.cli import main
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol


@pytest.fixture
async def fake() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(
        api_key="k-123", api_secret="s-456",
        symbols=[FakeSymbol(symbol="NEWUSDT", base="NEW", price=Decimal("0.00009512"), quantity_scale=0,
                            price_scale=8, min_quantity=Decimal("1"))],
    ) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeMexcServer) -> Path:
    db = tmp_path / "manual.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("MEXC_BASE_URL", fake.base_url)
    monkeypatch.delenv("MEXC_API_KEY", raising=False)
    monkeypatch.delenv("MEXC_SECRET_KEY", raising=False)
    return db


async def cli(*argv: str) -> tuple[int, str, str]:
    """main() runs its own event loop: run it in a thread while this loop serves the fake."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(main, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def with_keys(monkeypatch: pytest.MonkeyPatch, secret: str = "s-456") -> None:
    monkeypatch.setenv("MEXC_API_KEY", "k-123")
    monkeypatch.setenv("MEXC_SECRET_KEY", secret)


async def test_paper_snipe_fills_at_the_exchange_price_and_sends_no_order(env: Path, fake: FakeMexcServer) -> None:
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01")
    assert code == 0, err
    assert out.startswith("paper snipe of NEWUSDT for 10.01 USDT")
    assert "FILLED 105235 @ 0.00009512 = 10.0099532, fee 0.0050049766 USDT" in out
    assert fake.accepted_orders() == []  # paper: nothing reached the exchange's order book
    assert env.exists()


async def test_live_snipe_places_exactly_one_real_order(env: Path, fake: FakeMexcServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch)
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--live")
    assert code == 0, err
    assert out.startswith("LIVE snipe of NEWUSDT")
    [order] = fake.accepted_orders("NEWUSDT")
    assert order.client_order_id.startswith("snp")
    assert "FILLED" in out and "filled:" in out


async def test_live_snipe_at_a_time_retries_until_the_pair_opens(env: Path, fake: FakeMexcServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch)
    launch = datetime.now(UTC) + timedelta(seconds=1)
    fake.symbols["NEWUSDT"].opens_at_ms = int(launch.timestamp() * 1000) + 60 + fake.skew_ms
    monkeypatch.setenv("SNIPER_RETRY_INTERVAL_MS", "5")
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--at", launch.isoformat(), "--live")
    assert code == 0, err
    assert len(fake.accepted_orders("NEWUSDT")) == 1
    refused = [s for e, s in fake.replies if e.endswith("order") and s != 200]
    assert refused, "the first sends before the open should have been refused as not yet open"
    attempts = int(out.split(" attempts,")[0].rsplit(" ", 1)[-1])
    assert attempts > 1


async def test_a_second_snipe_of_the_same_launch_is_refused_in_one_line(env: Path, fake: FakeMexcServer) -> None:
    at = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    assert (await cli("snipe", "NEWUSDT", "--quote-amount", "5", "--at", at))[0] == 0
    code, _, err = await cli("snipe", "NEWUSDT", "--quote-amount", "5", "--at", at)
    assert code != 0 and err.count("\n") == 1 and "exists already" in err


async def test_risk_limits_apply_to_manual_snipes(env: Path, fake: FakeMexcServer) -> None:
    # Refused before anything is scheduled, by the limits the executor applies at launch (issue 12).
    code, _, err = await cli("snipe", "NEWUSDT", "--quote-amount", "1000")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("sniper: RiskLimitExceeded: quote amount 1000 exceeds the per-snipe limit 100")
    assert fake.accepted_orders() == []
    assert (await cli("history", "--all"))[1] == "no events recorded yet\n"


async def test_a_manual_snipe_below_the_pairs_minimum_order_value_is_refused(env: Path, fake: FakeMexcServer) -> None:
    # The CLI has the exchange's rules for the pair at hand (the API has not: there MEXC judges it).
    code, _, err = await cli("snipe", "NEWUSDT", "--quote-amount", "0.5")
    assert (code, err) == (1, "sniper: RiskLimitExceeded: quote amount 0.5 is below the pair's minimum order value 1\n")
    assert fake.accepted_orders() == []


async def test_mexc_check_passes_with_good_keys_and_trades_nothing(env: Path, fake: FakeMexcServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch)
    code, out, err = await cli("mexc", "check", "--symbol", "NEWUSDT")
    assert code == 0, out + err
    assert out.count("[ok  ]") == 6
    assert fake.accepted_orders() == []
    assert not env.exists()  # a check writes no history


async def test_mexc_check_reports_a_bad_secret_without_showing_it(env: Path, fake: FakeMexcServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch, secret="wrong-secret-value")
    code, out, err = await cli("mexc", "check", "--symbol", "NEWUSDT")
    assert code != 0
    assert "[FAIL] account" in out and "[FAIL] order/test" in out
    assert "wrong-secret-value" not in out + err


async def test_reconcile_with_nothing_left_open_says_clean_and_exits_0(env: Path, fake: FakeMexcServer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch)
    assert (await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--live"))[0] == 0
    code, out, err = await cli("reconcile")
    assert code == 0, out + err
    assert out.startswith(f"reconciling the trade history with MEXC via {fake.base_url}")
    assert out.endswith("clean: every order is accounted for\n")
    # Reconciling sends nothing (the send plan's early sends refused as not open, 10007, aside).
    assert [a.outcome for a in fake.order_arrivals if a.outcome != "10007"] == ["accepted"]


async def test_reconcile_without_keys_runs_on_paper(env: Path, fake: FakeMexcServer) -> None:
    code, out, err = await cli("reconcile")
    assert code == 0, out + err
    assert out.startswith("reconciling the trade history with paper")
    assert fake.order_arrivals == []
