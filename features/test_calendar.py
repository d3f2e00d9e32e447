"""Steps of calendar.feature: SyncCalendar over the paper exchange's calendar."""

from __future__ import annotations

from pytest_bdd import given, scenarios, then, when

from application.ports import TraderSettings
from domain.exit_plans import resolve_exit_plan
from features.conftest import step
from features.world import World, dec, names

scenarios("calendar.feature")


def _tickers(cell: str) -> frozenset[str]:
    return frozenset(t.strip() for t in cell.split(",") if t.strip())


@given("these traders:")
def these_traders(world: World, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    for row in rows:
        r = dict(zip(header, (c.strip() for c in row), strict=True))
        assert r["auto-snipe"] in ("on", "off"), r
        world.put_trader(TraderSettings(
            user_id=r["user"],
            auto_snipe=r["auto-snipe"] == "on",
            quote_amount=dec(r["quote amount"]),
            exit_strategy=r["exit plan"],
            only_tickers=_tickers(r["only tickers"]),
            skip_tickers=_tickers(r["skip tickers"]),
        ))


@when(step("the calendar is synced at {moment:Time}"))
def synced_at(world: World, moment: str) -> None:
    world.set_time(world.at(moment))
    world.begin_action()
    world.result = world.sync()


@then(step("ListingAnnounced is recorded once for {ticker:Name}, launching at {launch:Time}"))
def announced_once(world: World, ticker: str, launch: str) -> None:
    announced = [r for r in world.events_named("ListingAnnounced") if r.event.coin_id == world.coin_id(ticker)]
    assert len(announced) == 1, announced
    event = announced[0].event
    assert event.ticker == ticker
    assert event.symbol == world.symbol_code(ticker)
    assert event.launch_at == world.at(launch)
    assert announced[0].stream_id == f"listing-{world.coin_id(ticker)}"
    assert announced[0].user_id == "system"


@then("the sync recorded nothing new")
def sync_recorded_nothing(world: World) -> None:
    assert world.events_since_mark() == []
    assert world.result.new_listings == [] and world.result.new_targets == []


@then(step("the sync recorded ListingAnnounced for {ticker:Name} only"))
def sync_recorded_listing_only(world: World, ticker: str) -> None:
    announced = [r.event.ticker for r in world.events_since_mark() if r.event.type_name == "ListingAnnounced"]
    assert announced == [ticker]


@then(step("the sync recorded SnipeTargetCreated for {user:Name} only"))
def sync_recorded_target_for(world: World, user: str) -> None:
    recorded = world.events_since_mark()
    assert names(recorded) == ["SnipeTargetCreated"]
    assert recorded[0].user_id == user


@then(step("{user:Name} has {count:d} snipe target for {ticker:Name}"))
def has_targets(world: World, user: str, count: int, ticker: str) -> None:
    created = [
        r for r in world.events_named("SnipeTargetCreated")
        if r.user_id == user and r.event.coin_id == world.coin_id(ticker)
    ]
    assert len(created) == count, created
    assert len(world.target_events(user, ticker)) == count


@then("no snipe target was created")
def no_target_created(world: World) -> None:
    assert world.events_named("SnipeTargetCreated") == []
    assert world.result.new_targets == []


@then(step("snipe targets were created for {users} only"))
def targets_created_for(world: World, users: str) -> None:
    expected = sorted(u.strip() for u in users.replace(" and ", ",").split(",") if u.strip())
    created = sorted(r.user_id for r in world.events_named("SnipeTargetCreated"))
    assert created == expected
    assert sorted(world.result.new_targets) == sorted(world.target_id(u, "NEW") for u in expected)


@then(step("each new target is watching {ticker:Name} with its trader's quote amount and exit plan:"))
def targets_watching(world: World, ticker: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    for row in rows:
        r = dict(zip(header, row, strict=True))
        target = world.target(r["user"], ticker)
        assert target.status.value == "watching"
        assert target.symbol is not None and target.symbol.code == world.symbol_code(ticker)
        assert target.quote_amount == dec(r["quote amount"])
        assert target.exit_plan == resolve_exit_plan(r["exit plan"])
        assert target.launch_at == world.at(r["launch at"])
        assert target.live is False
        created = world.target_events(r["user"], ticker)[0]
        assert created.event.type_name == "SnipeTargetCreated"
        assert created.event.exit_plan.name == r["exit plan"]


