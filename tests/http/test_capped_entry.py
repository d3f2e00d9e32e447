"""The entry price cap through the API (issue 14): `max_entry_price` on POST/PATCH /targets and on
PUT /settings, validated (a positive decimal of bounded digits; 4xx otherwise), shown in the target
view and in its history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from tests.http.support import ALICE, auth
from tests.http.test_resources import settings_body

A = auth(ALICE)


def launch_in(hours: float = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def create(client: AsyncTestClient, symbol: str = "NEWUSDT", **extra: object):  # noqa: ANN201
    return await client.post("/api/v1/targets", headers=A,
                             json={"symbol": symbol, "launch_at": launch_in(), "quote_amount": "10", **extra})


async def test_a_capped_target_shows_its_cap_in_the_view_and_the_history(client: AsyncTestClient) -> None:
    r = await create(client, max_entry_price="0.0123")
    assert r.status_code == 201, r.text
    target = r.json()
    assert target["max_entry_price"] == "0.0123"
    (listed,) = (await client.get("/api/v1/targets", headers=A)).json()["items"]
    assert listed["max_entry_price"] == "0.0123"
    history = (await client.get(f"/api/v1/targets/{target['target_id']}/history", headers=A)).json()
    assert history[0]["type"] == "SnipeTargetCreated" and history[0]["data"]["max_entry_price"] == "0.0123"

    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A, json={"quote_amount": "12"})
    assert r.status_code == 200 and r.json()["max_entry_price"] == "0.0123"  # not named: kept
    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A, json={"max_entry_price": "0.02"})
    assert r.status_code == 200 and r.json()["max_entry_price"] == "0.02"
    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A, json={"clear_max_entry_price": True})
    assert r.status_code == 200 and r.json()["max_entry_price"] is None
    history = (await client.get(f"/api/v1/targets/{target['target_id']}/history", headers=A)).json()
    assert [e["data"]["max_entry_price"] for e in history if e["type"] == "SnipeTargetAmended"] == [
        "0.0123", "0.02", None]


async def test_an_uncapped_target_says_so(client: AsyncTestClient) -> None:
    r = await create(client)
    assert r.status_code == 201 and r.json()["max_entry_price"] is None


async def test_the_settings_cap_is_the_default_of_new_targets(client: AsyncTestClient) -> None:
    r = await client.put("/api/v1/settings", headers=A, json=settings_body(max_entry_price="0.5"))
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/settings", headers=A)).json()["max_entry_price"] == "0.5"
    assert (await create(client)).json()["max_entry_price"] == "0.5"
    assert (await create(client, symbol="OWNUSDT", max_entry_price="0.1")).json()["max_entry_price"] == "0.1"
    r = await client.put("/api/v1/settings", headers=A, json=settings_body(max_entry_price=None))
    assert r.status_code == 200 and r.json()["max_entry_price"] is None


@pytest.mark.parametrize(("cap", "status"), [
    ("0", 422), ("0.000", 422),  # not positive: the domain's rule
    ("-1", 400), ("abc", 400), ("1e5", 400), ("0." + "0" * 18 + "1", 400), ("1" * 21, 400), (0.5, 400),
])
async def test_a_bad_cap_is_a_4xx_naming_it_and_records_nothing(client: AsyncTestClient, cap: object,
                                                                 status: int) -> None:
    r = await create(client, max_entry_price=cap)
    assert r.status_code == status, r.text
    assert "max_entry_price" in r.json()["detail"] or "max entry price" in r.json()["detail"]
    assert (await client.get("/api/v1/targets", headers=A)).json()["items"] == []
    r = await client.put("/api/v1/settings", headers=A, json=settings_body(max_entry_price=cap))
    assert r.status_code == status, r.text


async def test_a_patch_cannot_both_set_and_clear_the_cap(client: AsyncTestClient) -> None:
    target = (await create(client, max_entry_price="0.0123")).json()
    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A,
                           json={"max_entry_price": "0.02", "clear_max_entry_price": True})
    assert r.status_code == 400 and "not both" in r.json()["detail"]
    r = await client.patch(f"/api/v1/targets/{target['target_id']}", headers=A, json={"max_entry_price": "0"})
    assert r.status_code == 422
    assert (await client.get(f"/api/v1/targets/{target['target_id']}", headers=A)).json()["max_entry_price"] == "0.0123"
