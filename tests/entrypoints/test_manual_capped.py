"""`sniper snipe ... --max-price P` (issue 14) against the fake MEXC server on 127.0.0.1: an
IMMEDIATE_OR_CANCEL limit buy at the cap instead of a market buy, on paper and live."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.entrypoints.test_manual import cli, env, fake, with_keys  # noqa: F401 (fixtures)
from tests.fakes.mexc_http import FakeMexcServer


async def test_paper_snipe_with_a_cap_above_the_price_fills_and_sends_no_order(env: Path,  # noqa: F811
                                                                               fake: FakeMexcServer) -> None:  # noqa: F811
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--max-price", "0.0001")
    assert code == 0, err
    assert out.startswith("paper snipe of NEWUSDT for 10.01 USDT at most 0.0001 each")
    flat = " ".join(out.split())  # long lines may be wrapped to the terminal
    assert "IOC limit buy for 10.01 at most 0.0001 each submitted" in flat
    assert "FILLED 100100 @ 0.00009512" in flat  # 10.01 / 0.0001, filled at the price
    assert fake.accepted_orders() == []


async def test_paper_snipe_with_a_cap_below_the_price_buys_nothing_and_says_why(env: Path,  # noqa: F811
                                                                                fake: FakeMexcServer) -> None:  # noqa: F811
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--max-price", "0.00001")
    assert code != 0
    assert "failed: no fill at or below the cap 0.00001: the price opened at 0.00009512" in " ".join(out.split())
    code, history, err = await cli("history", "--all")
    assert code == 0, err
    flat = " ".join(history.split())  # long lines may be wrapped to the terminal
    assert "no fill at or below the cap 0.00001" in flat and "entry capped at 0.00001" in flat


async def test_live_snipe_with_a_cap_sends_one_ioc_limit_order(env: Path, fake: FakeMexcServer,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with_keys(monkeypatch)
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10.01", "--max-price", "0.0001", "--live")
    assert code == 0, err
    [order] = fake.accepted_orders("NEWUSDT")
    assert (order.type, order.price, order.orig_qty) == ("IMMEDIATE_OR_CANCEL", Decimal("0.0001"), Decimal("100100"))
    assert "FILLED 100100 @ 0.00009512" in " ".join(out.split())


@pytest.mark.parametrize("cap", ["0", "-0.1", "abc", "0.0000000000000000001"])
async def test_a_bad_max_price_is_one_line_and_a_non_zero_exit(env: Path, fake: FakeMexcServer,  # noqa: F811
                                                               cap: str) -> None:
    code, out, err = await cli("snipe", "NEWUSDT", "--quote-amount", "10", "--max-price", cap)
    assert code != 0 and out == ""
    assert err.startswith("sniper: --max-price") and err.count("\n") == 1 and "Traceback" not in err
    assert fake.accepted_orders() == []
