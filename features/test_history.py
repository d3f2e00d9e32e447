"""Steps of history.feature: GetTargetHistory, GetPortfolio, GetAuditTrail, and rehydration."""

from __future__ import annotations

from decimal import Decimal

from pytest_bdd import scenarios, then, when

from application.errors import NotFound
from domain.events import Recorded
from domain.position import Position, position_id_for, position_stream
from domain.target import SnipeTarget, target_stream
from features.conftest import step
from features.world import World, dec, names

scenarios("history.feature")


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _target_id(world: World, spec: str) -> str:
    """`t-...` as given, or `user on TICKER`."""
    if " on " in spec:
        user, ticker = spec.split(" on ")
        return world.target_id(user, ticker)
    return spec


@when(step("the history of {user:Name}'s target on {ticker:Name} is requested"))
def history_of(world: World, user: str, ticker: str) -> None:
    world.subject = world.target_id(user, ticker)
    world.result = world.run(world.target_history()(world.subject))


@when(step('the history of target "{spec}" is requested'))
def history_of_target(world: World, spec: str) -> None:
    world.subject = _target_id(world, spec)
    world.attempt(lambda: world.run(world.target_history()(world.subject)))


@when(step("the portfolio of {who:Name} is requested"))
def portfolio_of(world: World, who: str) -> None:
    world.subject = who
    world.result = world.run(world.portfolio()(None if who == "everyone" else who))


@when("every snipe target and position is rebuilt from its stream")
def rebuild_all(world: World) -> None:
    world.run(world.book.catch_up(world.store))
    targets = {
        tid: SnipeTarget.rehydrate(target_stream(tid), world.run(world.store.load(target_stream(tid))))
        for tid in world.book.targets
    }
    positions = {
        pid: Position.rehydrate(position_stream(pid), world.run(world.store.load(position_stream(pid))))
        for pid in world.book.positions
    }
    world.result = (targets, positions)


@when("the audit trail is requested")
def audit_trail(world: World) -> None:
    world.result = world.run(world.audit_trail()())


@when(step("the audit trail of {user:Name} is requested"))
def audit_trail_of(world: World, user: str) -> None:
    world.subject = user
    world.result = world.run(world.audit_trail()(user))


@when(step("the audit trail after position {after:d} is requested, {limit:d} at most"))
def audit_trail_page(world: World, after: int, limit: int) -> None:
    world.result = world.run(world.audit_trail()(after=after, limit=limit))


# --- Then ---------------------------------------------------------------------------------------


@then(step("the history is, in order: {events}"))
def history_is(world: World, events: str) -> None:
    assert names(world.result) == _listed(events)


@then(step("every event of the history belongs to {user:Name} and carries the target id as correlation id"))
def history_belongs_to(world: World, user: str) -> None:
    assert {r.user_id for r in world.result} == {user}
    assert {r.correlation_id for r in world.result} == {world.subject}


@then("the history is in global order and holds every event of the target's and the position's streams")
def history_complete(world: World) -> None:
    positions = [r.position for r in world.result]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    streams = {target_stream(world.subject), position_stream(position_id_for(world.subject))}
    expected = [r for r in world.all_events() if r.stream_id in streams]
    assert world.result == expected


@then(step('the query fails with NotFound naming "{spec}"'))
def fails_not_found(world: World, spec: str) -> None:
    assert isinstance(world.error, NotFound), world.error
    assert world.subject in str(world.error)
    assert world.subject == _target_id(world, spec)


@then(step("the portfolio has {count:d} lines"))
def portfolio_lines(world: World, count: int) -> None:
    assert len(world.result.lines) == count


@then(step("its realised P&L is {realised:Dec}, the sum of its positions' realised P&L"))
def portfolio_realised(world: World, realised: Decimal) -> None:
    portfolio = world.result
    assert portfolio.realised_pnl == realised
    assert sum((line.position.realised_pnl for line in portfolio.lines if line.position), Decimal(0)) == realised


@then(step("its realised P&L equals the sum of the recorded PositionClosed P&L of {who:Name}"))
def portfolio_matches_events(world: World, who: str) -> None:
    closed = [r for r in world.events_named("PositionClosed") if who == "everyone" or r.user_id == who]
    exits = [
        r for r in world.all_events()
        if r.event.type_name in ("TakeProfitHit", "StopLossHit", "TrailingStopHit", "MaxHoldTimeReached")
        and (who == "everyone" or r.user_id == who)
    ]
    # Open positions have realised nothing in this morning; every exit belongs to a closed one.
    assert world.result.realised_pnl == sum((r.event.realised_pnl for r in closed), Decimal(0))
    assert world.result.realised_pnl == sum((r.event.realised_pnl for r in exits), Decimal(0))


@then(step("its unrealised P&L is {unrealised:Dec} and it invested {invested:Dec}"))
def portfolio_unrealised(world: World, unrealised: Decimal, invested: Decimal) -> None:
    assert world.result.unrealised_pnl == unrealised
    assert world.result.invested == invested
    open_lines = [line for line in world.result.lines if line.position and line.position.status != "closed"]
    assert sum((line.unrealised_pnl for line in open_lines), Decimal(0)) == unrealised


@then("each rebuilt aggregate has the status and P&L the trade book shows")
def rebuilt_agrees(world: World) -> None:
    targets, positions = world.result
    assert targets and positions
    for tid, target in targets.items():
        assert target.status.value == world.book.targets[tid].status, tid
        assert target.user_id == world.book.targets[tid].user_id
    for pid, position in positions.items():
        view = world.book.positions[pid]
        assert (position.status.value, position.realised_pnl, position.remaining) == (
            view.status, view.realised_pnl, view.remaining
        ), pid
        assert (position.total_cost, position.remaining_cost, position.proceeds, position.fees) == (
            view.cost, view.remaining_cost, view.proceeds, view.fees
        ), pid


@then("they are:")
def they_are(world: World, datatable: list[list[str]]) -> None:
    targets, positions = world.result
    header, *rows = datatable
    assert len(rows) == len(targets)
    for row in rows:
        r = dict(zip(header, row, strict=True))
        tid = world.target_id(r["user"], r["ticker"])
        assert targets[tid].status.value == r["target"]
        pid = position_id_for(tid)
        if r["position"] == "-":
            assert pid not in positions
            continue
        position = positions[pid]
        assert position.status.value == r["position"]
        assert position.realised_pnl == dec(r["realised P&L"])
        assert position.remaining == dec(r["held"])


def _trail(world: World) -> list[Recorded]:
    return world.result


@then("it lists every recorded event once, numbered 1 to the last position without a gap")
def trail_complete(world: World) -> None:
    trail = _trail(world)
    last = world.run(world.store.last_position())
    assert [r.position for r in trail] == list(range(1, last + 1))
    assert trail == world.all_events()


@then(step(
    "it holds ListingAnnounced {listings:d} times, SnipeTargetCreated {targets:d} times "
    "and PositionOpened {positions:d} times"
))
def trail_counts(world: World, listings: int, targets: int, positions: int) -> None:
    kinds = names(_trail(world))
    assert (kinds.count("ListingAnnounced"), kinds.count("SnipeTargetCreated"), kinds.count("PositionOpened")) == (
        listings, targets, positions
    )


@then("the emergency stop's events come last")
def stop_last(world: World) -> None:
    assert names(_trail(world))[-2:] == ["EmergencyStopActivated", "EmergencyStopCleared"]


@then(step("it holds every event of {user:Name}, of the system and of the global stop, and nothing of alice"))
def trail_of_user(world: World, user: str) -> None:
    trail = _trail(world)
    expected = [r for r in world.all_events() if r.user_id in (user, "system", "global")]
    assert trail == expected
    assert {r.user_id for r in trail} == {user, "system", "global"}


@then(step("it lists positions {first:d} to {last:d}"))
def trail_page(world: World, first: int, last: int) -> None:
    assert [r.position for r in _trail(world)] == list(range(first, last + 1))
