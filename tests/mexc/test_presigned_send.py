"""The first send of a snipe made ahead (issue 14): `arm_buy` builds and signs the buy's request,
stamped for the planned send, so the send only writes it; any later send is signed afresh, and so
is one leaving when MEXC would no longer take the stamp. Against the fake exchange, which checks
signature and timestamp as MEXC does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application.errors import NotYetOpen
from application.ports import PresignedSends
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import NEW, coid


class _CountingSigner:
    """The client's signer, counting the signatures made."""

    def __init__(self, inner: object) -> None:
        self.inner, self.signed = inner, 0

    def sign(self, query: str, body: str = "") -> str:
        self.signed += 1
        return self.inner.sign(query, body)  # type: ignore[attr-defined]


async def armed(client: MexcRestClient, send_at: datetime, max_price: Decimal | None = None) -> tuple[
        MexcExchange, _CountingSigner]:
    exchange = MexcExchange(client, clock_samples=1)
    await exchange.prepare(NEW)
    assert isinstance(exchange, PresignedSends)
    exchange.arm_buy(NEW, Decimal("10"), max_price, coid(), send_at)
    signer = client._signer = _CountingSigner(client._signer)  # type: ignore[assignment]
    return exchange, signer


async def test_the_first_send_writes_the_request_made_ahead_and_is_accepted(
    server: FakeMexcServer, client: MexcRestClient
) -> None:
    exchange, signer = await armed(client, datetime.now(UTC))
    await exchange.place_market_buy(NEW, Decimal("10"), coid())
    assert signer.signed == 0  # nothing built or signed at the send
    [order] = server.accepted_orders()
    assert (order.client_order_id, order.type) == (coid().value, "MARKET")


async def test_a_capped_buy_is_made_ahead_too(server: FakeMexcServer, client: MexcRestClient) -> None:
    exchange, signer = await armed(client, datetime.now(UTC), Decimal("0.35"))
    await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
    assert signer.signed == 0
    [order] = server.accepted_orders()
    assert (order.type, order.price) == ("IMMEDIATE_OR_CANCEL", Decimal("0.35"))


async def test_a_resend_after_not_open_is_signed_afresh(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.symbols["NEWUSDT"].opens_at_ms = server.now_ms() + 3_600_000
    exchange, signer = await armed(client, datetime.now(UTC))
    with pytest.raises(NotYetOpen):
        await exchange.place_market_buy(NEW, Decimal("10"), coid())
    assert signer.signed == 0
    server.symbols["NEWUSDT"].opens_at_ms = None
    await exchange.place_market_buy(NEW, Decimal("10"), coid())  # made ahead for one send only
    assert signer.signed == 1
    [order] = server.accepted_orders()
    assert order.client_order_id == coid().value


@pytest.mark.parametrize("planned", [timedelta(seconds=-8), timedelta(hours=1)], ids=["stale", "far-ahead"])
async def test_a_stamp_mexc_would_refuse_is_replaced_by_a_fresh_one(
    server: FakeMexcServer, client: MexcRestClient, planned: timedelta
) -> None:
    exchange, signer = await armed(client, datetime.now(UTC) + planned)
    await exchange.place_market_buy(NEW, Decimal("10"), coid())
    assert signer.signed == 1
    [order] = server.accepted_orders()  # not refused 700003
    assert order.client_order_id == coid().value
