"""The list endpoints are paged (issue 17): `?limit=` (1 to 500, default 100) and an opaque
`?cursor=`, answered as {"items": [...], "next": cursor | null}. Pages never skip or repeat an
item while new ones are recorded, and a cursor is bound to its user and its list."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from application import repository
from application.ports import EventStore
from domain.events import Cause
from domain.listing import Listing
from domain.values import Symbol
from entrypoints.http.paging import user_tag
from tests.http.conftest import make_app
from tests.http.support import ALICE, BOB, auth, seed_position

A = auth(ALICE)
AT = datetime(2030, 1, 1, tzinfo=UTC)  # a fixed time: the lists' order does not depend on the clock
LISTS = ("targets", "positions", "listings", "calendar", "trades", "audit")


@pytest.fixture
async def world():
    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        yield client, await container.get(EventStore)
    await container.close()


async def page_through(client: AsyncTestClient, path: str, *, between=None, headers=A) -> list[dict]:  # noqa: ANN001
    """Every item of a list, following `next`; `between()` runs after each page."""
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        answer = await client.get(path, params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                                  headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"items", "next"} and len(body["items"]) <= 100
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items
        if between is not None:
            await between()
    raise AssertionError("the pages never ended")


async def test_250_targets_in_pages_of_100_each_exactly_once_while_new_ones_arrive(world) -> None:
    client, store = world
    made = [(await seed_position(store, ALICE, f"C{i:03d}", AT))[0] for i in range(250)]
    added: list[str] = []

    async def more() -> None:
        for _ in range(5):
            added.append((await seed_position(store, ALICE, f"N{len(added):03d}", AT))[0])

    listed = [t["target_id"] for t in await page_through(client, "/api/v1/targets", between=more)]
    assert len(listed) == len(set(listed)) and listed == made + added  # creation order, none twice
    assert len(added) == 10  # two pages followed, each after five new ones
    positions = [p["target_id"] for p in await page_through(client, "/api/v1/positions", between=more)]
    assert positions == made + added and len(added) == 20  # in the order opened, none twice


async def test_trades_newest_first_and_audit_in_order_each_exactly_once_while_new_ones_arrive(world) -> None:
    client, store = world
    for i in range(120):
        await seed_position(store, ALICE, f"T{i:03d}", AT)
    count = 0

    async def more() -> None:
        nonlocal count
        await seed_position(store, ALICE, f"M{count:03d}", AT)
        count += 1

    trades = await page_through(client, "/api/v1/trades", between=more)
    order = [t["position"] for t in trades]
    assert order == sorted(set(order), reverse=True) and len(order) == 120  # newer fills come before page 1
    audit = await page_through(client, "/api/v1/audit", between=more)
    order = [e["position"] for e in audit]
    assert order == sorted(set(order)) and len(order) == 2 * (120 + count)  # a target and a position event each
    everything = (await client.get("/api/v1/audit", params={"limit": 500}, headers=A)).json()
    assert [e["position"] for e in everything["items"]] == order and everything["next"] is None


async def test_listings_soonest_first_then_by_coin_id(world) -> None:
    client, store = world
    for i in range(7):
        coin = f"L{i}"
        listing = Listing.announce(f"coin-{coin}", coin, coin, Symbol(coin, "USDT"), AT + timedelta(hours=i % 3),
                                   Cause(AT, f"coin-{coin}"))
        await repository.save(store, listing)
    seen = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/listings", params=params, headers=A)).json()
        seen += [(x["launch_at"], x["coin_id"]) for x in body["items"]]
        if (cursor := body["next"]) is None:
            break
    assert seen == sorted(seen) and len(seen) == 7


async def test_a_cursor_of_another_user_or_list_or_made_up_is_refused_naming_it(world) -> None:
    """Of the documented shape: 422 (a rule the schema cannot state, as elsewhere); else 400."""
    client, store = world
    for i in range(3):
        await seed_position(store, ALICE, f"X{i}", AT)
        await seed_position(store, BOB, f"Y{i}", AT)
    nexts = {}
    for name in LISTS[:2] + LISTS[4:]:
        body = (await client.get(f"/api/v1/{name}", params={"limit": 1}, headers=A)).json()
        assert len(body["items"]) == 1 and isinstance(body["next"], str)
        nexts[name] = body["next"]
    for name, cursor in nexts.items():
        # bob cannot use alice's cursor, nor alice a cursor of another list
        for path, headers in ((f"/api/v1/{name}", auth(BOB)),
                              *((f"/api/v1/{other}", A) for other in LISTS if other != name)):
            answer = await client.get(path, params={"cursor": cursor}, headers=headers)
            assert answer.status_code == 422, (name, path, answer.text)
            assert answer.json()["detail"].startswith("cursor: ")
    def made_up(*body: object) -> str:
        return base64.urlsafe_b64encode(msgspec.msgpack.encode(list(body))).decode().rstrip("=")

    alice = user_tag(ALICE)
    garbage = [("targets", "x"), ("targets", "AAAA"), ("targets", made_up(2, alice, "targets", ["t"])),
               ("targets", base64.urlsafe_b64encode(b"\xff" * 30).decode().rstrip("=")),
               ("targets", made_up(1, alice, "targets", ["t-unknown"])),
               ("listings", made_up(1, alice, "listings", ["2030-01-01T00:00:00", "c"])),  # no time zone
               ("listings", made_up(1, alice, "listings", ["not a time", "c"])),
               ("trades", made_up(1, alice, "trades", [2**63])), ("audit", made_up(1, alice, "audit", ["1"]))]
    for name, cursor in garbage:
        answer = await client.get(f"/api/v1/{name}", params={"cursor": cursor}, headers=A)
        assert answer.status_code == 422 and answer.json()["detail"].startswith("cursor: "), (cursor, answer.text)
    for name in LISTS:
        for limit in ("0", "501", "ten", "-1"):
            answer = await client.get(f"/api/v1/{name}", params={"limit": limit}, headers=A)
            assert answer.status_code == 400, (name, limit, answer.text)
        assert (await client.get(f"/api/v1/{name}", params={"cursor": "no/slash"}, headers=A)).status_code == 400


async def test_the_last_page_says_so_and_a_filtered_list_pages_past_items_that_left_the_filter(world) -> None:
    client, store = world
    made = [(await seed_position(store, ALICE, f"F{i}", AT))[0] for i in range(3)]
    body = (await client.get("/api/v1/targets", params={"limit": 3}, headers=A)).json()
    assert len(body["items"]) == 3 and body["next"] is None
    status = body["items"][0]["status"]
    first = (await client.get("/api/v1/targets", params={"limit": 1, "status": status}, headers=A)).json()
    assert [t["target_id"] for t in first["items"]] == made[:1]
    # the cursor says where in the whole list to go on, whatever the filter: none cancelled, then the rest
    rest = (await client.get("/api/v1/targets", params={"limit": 5, "status": "cancelled", "cursor": first["next"]},
                             headers=A)).json()
    assert rest == {"items": [], "next": None}
    rest = (await client.get("/api/v1/targets", params={"limit": 5, "status": status, "cursor": first["next"]},
                             headers=A)).json()
    assert [t["target_id"] for t in rest["items"]] == made[1:] and rest["next"] is None
