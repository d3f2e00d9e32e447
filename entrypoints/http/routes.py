"""The API's resources under /api/v1, each scoped to the signed-in user (request.user).

Handlers only translate: a request struct to a use case's input, its answer to a response
struct. Another user's resource is never distinguished from a missing one (404).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from dishka import FromDishka
from dishka.integrations.litestar import DishkaRouter
from litestar import delete, get, patch, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from application.credentials import (
    ApiCredentials,
    DeleteCredentials,
    GetCredentialSummary,
    StoreCredentials,
    TestCredentials,
)
from application.errors import InvalidInput, NotFound
from application.identity import Identity
from application.ports import AgentStatusBoard, Clock, ReadModels, WallClock
from application.use_cases.queries import (
    GetUserAuditTrail,
    GetUserPortfolio,
    GetUserTargetHistory,
    ListListings,
    PricePositions,
    total_unrealised,
)
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.settings import ChangeTraderSettings, GetTraderSettings
from application.use_cases.strategies import (
    DeleteExitStrategy,
    GetExitStrategy,
    ListExitStrategies,
    SaveExitStrategy,
)
from application.use_cases.targets import (
    CancelSnipeTarget,
    CreateSnipeTarget,
    NewSnipe,
    SnipeAmendment,
    UpdateSnipeTarget,
)
from application.views import PositionView
from domain.values import Symbol
from entrypoints.http.cache import CachedReadModels
from entrypoints.http.errors import error_responses
from entrypoints.http.notifications import NOTIFICATION_HANDLERS
from entrypoints.http.paging import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    UnknownCursor,
    after_id,
    cut,
    decode_cursor,
    key_int,
    key_str,
)
from entrypoints.http.runtime import ReadModelRefresh
from entrypoints.http.schemas import (
    SUPPORTED_RANGE,
    YEAR_PATTERN,
    AgentOut,
    CancelIn,
    CredentialsIn,
    CredentialsOut,
    CredentialsTestIn,
    CredentialsTestOut,
    DailyPnlOut,
    EventOut,
    EventPage,
    ExitPlanBody,
    ExitStrategyOut,
    ListingOut,
    ListingPage,
    Me,
    PortfolioOut,
    PositionOut,
    PositionPage,
    SettingsBody,
    StopIn,
    StopOut,
    TargetIn,
    TargetOut,
    TargetPage,
    TargetPatch,
    TargetStatusName,
    TradeOut,
    TradePage,
    money,
    out_of_range,
    parse_money,
    priced_portfolio,
)
from entrypoints.http.telegram_routes import TELEGRAM_HANDLERS

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
TargetId = Annotated[
    str, PathParameter(pattern=ID_PATTERN, max_length=200, description="a target id, e.g. t-1a2b3c4d5e6f")
]
PositionId = Annotated[str, PathParameter(pattern=ID_PATTERN, max_length=200)]
StrategyPath = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", max_length=40)]


def day_parameter(name: str) -> QueryParameter:
    return QueryParameter(name=name, description=f"a day, {SUPPORTED_RANGE}", schema_extra={"pattern": YEAR_PATTERN})


AUTH = (400, 401, 429)  # every authenticated route can answer these (400: a malformed parameter)


def _user(identity: Identity) -> str:
    return identity.user_id


# --- me, credentials -------------------------------------------------------------------------

@get("/me", responses=error_responses(*AUTH), summary="The signed-in user")
async def me(identity: FromDishka[Identity]) -> Me:
    return Me(identity.user_id, identity.email, identity.development)


@get("/credentials", responses=error_responses(*AUTH, 404), summary="Stored MEXC credentials (hint only)")
async def get_credentials(identity: FromDishka[Identity], query: FromDishka[GetCredentialSummary]) -> CredentialsOut:
    summary = await query(_user(identity))
    if summary is None:
        raise NotFound("no MEXC credentials stored")
    return CredentialsOut.of(summary)


@put("/credentials", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 413),
     summary="Store or rotate MEXC credentials (replaces the old ones; answers only the key hint)")
async def put_credentials(
    data: JSONBody[CredentialsIn], identity: FromDishka[Identity], store: FromDishka[StoreCredentials]
) -> CredentialsOut:
    summary = await store(_user(identity), ApiCredentials(data.api_key, data.secret_key))
    return CredentialsOut.of(summary)


@delete("/credentials", status_code=HTTP_204_NO_CONTENT, responses=error_responses(*AUTH, 404),
        summary="Forget the stored MEXC credentials")
async def delete_credentials(identity: FromDishka[Identity], forget: FromDishka[DeleteCredentials]) -> None:
    if not await forget(_user(identity)):
        raise NotFound("no MEXC credentials stored")


@post("/credentials/test", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 404, 413, 503),
      summary="Check credentials with read-only MEXC calls: the given ones, or the stored ones")
async def test_credentials(
    identity: FromDishka[Identity], check: FromDishka[TestCredentials], data: JSONBody[CredentialsTestIn | None] = None
) -> CredentialsTestOut:
    given = None
    if data is not None and (data.api_key is not None or data.secret_key is not None):
        if data.api_key is None or data.secret_key is None:
            raise InvalidInput("api_key/secret_key", "give both, or neither to test the stored credentials")
        given = ApiCredentials(data.api_key, data.secret_key)
    return CredentialsTestOut.of(await check(_user(identity), given))


# --- settings and exit strategies -------------------------------------------------------------

@get("/settings", responses=error_responses(*AUTH), summary="Trading settings and risk profile")
async def get_settings(identity: FromDishka[Identity], query: FromDishka[GetTraderSettings]) -> SettingsBody:
    return SettingsBody.of(await query(_user(identity)))


@put("/settings", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409, 413, 422),
     summary="Replace trading settings and risk profile (checked as a whole)")
async def put_settings(
    data: JSONBody[SettingsBody], identity: FromDishka[Identity], change: FromDishka[ChangeTraderSettings]
) -> SettingsBody:
    return SettingsBody.of(await change(_user(identity), data.to_domain()))


@get("/exit-strategies", responses=error_responses(*AUTH), summary="Preset and own exit strategies")
async def list_strategies(
    identity: FromDishka[Identity], query: FromDishka[ListExitStrategies],
) -> list[ExitStrategyOut]:
    return [ExitStrategyOut.of(s) for s in await query(_user(identity))]


@get("/exit-strategies/{name:str}", responses=error_responses(*AUTH, 404), summary="One exit strategy")
async def get_strategy(
    name: StrategyPath, identity: FromDishka[Identity], query: FromDishka[GetExitStrategy]
) -> ExitStrategyOut:
    return ExitStrategyOut.of(await query(_user(identity), name))


@put("/exit-strategies/{name:str}", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409, 413, 422),
     summary="Save an exit strategy of your own (preset names are reserved)")
async def put_strategy(
    name: StrategyPath, data: JSONBody[ExitPlanBody], identity: FromDishka[Identity],
    save: FromDishka[SaveExitStrategy],
    query: FromDishka[GetExitStrategy],
) -> ExitStrategyOut:
    await save(_user(identity), data.to_domain(name))
    return ExitStrategyOut.of(await query(_user(identity), name))


@delete("/exit-strategies/{name:str}", status_code=HTTP_204_NO_CONTENT, responses=error_responses(*AUTH, 404, 409),
        summary="Delete an exit strategy of your own")
async def delete_strategy(
    name: StrategyPath, identity: FromDishka[Identity], drop: FromDishka[DeleteExitStrategy],
) -> None:
    await drop(_user(identity), name)


# --- listings --------------------------------------------------------------------------------

async def _listing_page(
    query: ListListings, user_id: str, endpoint: str, limit: int, cursor: str | None, upcoming_only: bool,
) -> ListingPage:
    last = key_str(decode_cursor(cursor, user_id, endpoint), parts=2)
    after = None
    if last is not None:
        try:
            after = (datetime.fromisoformat(last[0]), last[1])
        except ValueError:
            raise UnknownCursor("not a cursor of this list") from None
        if after[0].tzinfo is None:
            raise UnknownCursor("not a cursor of this list")
    found = await query(upcoming_only=upcoming_only, limit=limit + 1, after=after)
    page, following = cut(found, limit, lambda v: [v.launch_at.isoformat(), v.coin_id], user_id, endpoint)
    return ListingPage([ListingOut.of(v) for v in page], following)


@get("/listings", responses=error_responses(*AUTH, 422),
     summary="Listings the calendar announced, soonest first (then by coin id), paged")
async def list_listings(
    query: FromDishka[ListListings], identity: FromDishka[Identity],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> ListingPage:
    return await _listing_page(query, _user(identity), "listings", limit, cursor, upcoming_only=False)


@get("/calendar", responses=error_responses(*AUTH, 422),
     summary="Listings not launched yet, soonest first (then by coin id), paged")
async def calendar(
    query: FromDishka[ListListings], identity: FromDishka[Identity],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> ListingPage:
    return await _listing_page(query, _user(identity), "calendar", limit, cursor, upcoming_only=True)


# --- snipe targets ---------------------------------------------------------------------------

async def _own_target(read_models: ReadModels, user_id: str, target_id: str) -> TargetOut:
    for view in await read_models.targets(user_id):
        if view.target_id == target_id:
            return TargetOut.of(view)
    raise NotFound(f"unknown target id: {target_id}")


@get("/targets", responses=error_responses(*AUTH, 422),
     summary="Your snipe targets, in the order they were created, paged")
async def list_targets(
    identity: FromDishka[Identity], read_models: FromDishka[ReadModels],
    status: Annotated[list[TargetStatusName] | None, QueryParameter()] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> TargetPage:
    user = _user(identity)
    last = key_str(decode_cursor(cursor, user, "targets"))
    # Targets are never deleted and new ones come last: the page starts after the cursor's target,
    # found in the whole list (its status may have left the filter since).
    views = after_id(await read_models.targets(user), lambda v: v.target_id, last)
    if status:
        wanted = set(status)
        views = [v for v in views if v.status in wanted]
    page, following = cut(views, limit, lambda v: [v.target_id], user, "targets")
    return TargetPage([TargetOut.of(v) for v in page], following)


@post("/targets", status_code=HTTP_201_CREATED, responses=error_responses(*AUTH, 409, 413, 422),
      summary="Create a manual snipe target (recorded ready and scheduled at its launch)")
async def create_target(
    data: JSONBody[TargetIn], identity: FromDishka[Identity], create: FromDishka[CreateSnipeTarget],
    refresh: FromDishka[ReadModelRefresh], read_models: FromDishka[ReadModels],
) -> TargetOut:
    quote = data.quote_asset.upper()
    request = NewSnipe(
        user_id=_user(identity), symbol=Symbol.parse(data.symbol, quote), launch_at=data.launch_at,
        quote_amount=parse_money(data.quote_amount), exit_strategy=data.exit_strategy,
        max_entry_price=parse_money(data.max_entry_price) if data.max_entry_price is not None else None,
    )
    target_id = await create(request)
    await refresh()
    return await _own_target(read_models, _user(identity), target_id)


@get("/targets/{target_id:str}", responses=error_responses(*AUTH, 404), summary="One of your snipe targets")
async def get_target(
    target_id: TargetId, identity: FromDishka[Identity], read_models: FromDishka[ReadModels],
) -> TargetOut:
    return await _own_target(read_models, _user(identity), target_id)


@patch("/targets/{target_id:str}", responses=error_responses(*AUTH, 404, 409, 413, 422),
       summary="Change amount, exit strategy or entry price cap of a target whose order was not sent yet")
async def update_target(
    target_id: TargetId, data: JSONBody[TargetPatch], identity: FromDishka[Identity],
    update: FromDishka[UpdateSnipeTarget],
    refresh: FromDishka[ReadModelRefresh], read_models: FromDishka[ReadModels],
) -> TargetOut:
    amount = parse_money(data.quote_amount) if data.quote_amount is not None else None
    cap = parse_money(data.max_entry_price) if data.max_entry_price is not None else None
    await update(
        SnipeAmendment(_user(identity), target_id, amount, data.exit_strategy, cap, data.clear_max_entry_price)
    )
    await refresh()
    return await _own_target(read_models, _user(identity), target_id)


@post("/targets/{target_id:str}/cancel", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 404, 409, 413),
      summary="Cancel a target whose order was not sent yet")
async def cancel_target(
    target_id: TargetId, identity: FromDishka[Identity], cancel: FromDishka[CancelSnipeTarget],
    refresh: FromDishka[ReadModelRefresh], read_models: FromDishka[ReadModels], data: JSONBody[CancelIn | None] = None,
) -> TargetOut:
    reason = data.reason.strip() if data is not None else "cancelled by the trader"
    await cancel(_user(identity), target_id, reason)
    await refresh()
    return await _own_target(read_models, _user(identity), target_id)


@get("/targets/{target_id:str}/history", responses=error_responses(*AUTH, 404),
     summary="The recorded events of one of your targets and its position")
async def target_history(
    target_id: TargetId, identity: FromDishka[Identity], query: FromDishka[GetUserTargetHistory]
) -> list[EventOut]:
    return [EventOut.of(r) for r in await query(_user(identity), target_id)]


# --- positions, portfolio, trades, audit ----------------------------------------------------

@get("/portfolio", responses=error_responses(*AUTH), summary="Your positions and totals")
async def portfolio(
    identity: FromDishka[Identity], query: FromDishka[GetUserPortfolio], read_models: FromDishka[ReadModels],
    prices: FromDishka[PricePositions],
) -> PortfolioOut:
    async def build() -> tuple[PortfolioOut, list[PositionView]]:
        found = await query(_user(identity))
        return PortfolioOut.of(found), [p for p in found.positions if p.status != "closed"]

    if isinstance(read_models, CachedReadModels):  # the hot read: kept rendered until the projections move
        rendered, open_positions = await read_models.memo(("portfolio", _user(identity)), build)
    else:
        rendered, open_positions = await build()
    if not open_positions or not prices.available:
        return rendered
    # Prices move without the projections: the open positions are priced on each read (not kept).
    priced = await prices(open_positions)
    return priced_portfolio(rendered, priced, total_unrealised(priced))


@get("/positions", responses=error_responses(*AUTH, 422),
     summary="Your positions, in the order they were opened, paged")
async def list_positions(
    identity: FromDishka[Identity], read_models: FromDishka[ReadModels],
    open_only: Annotated[bool, QueryParameter()] = False,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> PositionPage:
    user = _user(identity)
    last = key_str(decode_cursor(cursor, user, "positions"))
    views = after_id(await read_models.positions(user), lambda p: p.position_id, last)
    if open_only:
        views = [p for p in views if p.status != "closed"]
    page, following = cut(views, limit, lambda p: [p.position_id], user, "positions")
    return PositionPage([PositionOut.of(p) for p in page], following)


@get("/positions/{position_id:str}", responses=error_responses(*AUTH, 404), summary="One of your positions")
async def get_position(
    position_id: PositionId, identity: FromDishka[Identity], read_models: FromDishka[ReadModels]
) -> PositionOut:
    for p in await read_models.positions(_user(identity)):
        if p.position_id == position_id:
            return PositionOut.of(p)
    raise NotFound(f"unknown position id: {position_id}")


@get("/trades", responses=error_responses(*AUTH, 422), summary="Your fills, newest first, paged")
async def trades(
    identity: FromDishka[Identity], read_models: FromDishka[ReadModels],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> TradePage:
    user = _user(identity)
    before = key_int(decode_cursor(cursor, user, "trades"))
    found = await read_models.trade_history(user, limit + 1, before)
    page, following = cut(found, limit, lambda t: [t.position], user, "trades")
    return TradePage([TradeOut.of(t) for t in page], following)


@get("/pnl/daily", responses=error_responses(*AUTH), summary="Realised P&L per UTC day (default: the last 30 days)")
async def daily_pnl(
    identity: FromDishka[Identity], read_models: FromDishka[ReadModels], clock: FromDishka[Clock],
    day_from: Annotated[date | None, day_parameter("from")] = None,
    day_to: Annotated[date | None, day_parameter("to")] = None,
) -> list[DailyPnlOut]:
    for name, day in (("from", day_from), ("to", day_to)):
        if day is not None and (problem := out_of_range(day)) is not None:
            raise InvalidInput(name, problem)
    end = day_to or clock.now().astimezone(UTC).date()
    start = day_from or end - timedelta(days=30)
    if start > end:
        raise InvalidInput("from", "must not come after 'to'")
    rows = await read_models.daily_pnl(_user(identity), start, end)
    return [DailyPnlOut(r.day.isoformat(), money(r.realised_pnl)) for r in rows]


@get("/audit", responses=error_responses(*AUTH, 422),
     summary="Your audit trail: every event recorded for you, in order, paged")
async def audit(
    identity: FromDishka[Identity], query: FromDishka[GetUserAuditTrail],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> EventPage:
    user = _user(identity)
    after = key_int(decode_cursor(cursor, user, "audit")) or 0
    found = await query(user, after, limit + 1)
    page, following = cut(found, limit, lambda r: [r.position or 0], user, "audit")
    return EventPage([EventOut.of(r) for r in page], following)


# --- emergency stop and agents ---------------------------------------------------------------

@get("/emergency-stop", responses=error_responses(*AUTH),
     summary="Whether trading is halted for you (a global stop counts)")
async def get_stop(identity: FromDishka[Identity], read_models: FromDishka[ReadModels]) -> StopOut:
    reason = await read_models.halted(_user(identity))
    return StopOut(reason is not None, reason)


@post("/emergency-stop", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409, 413, 422),
      summary="Halt your trading: new orders are refused until you clear it (pressed again: says since when)")
async def activate_stop(
    data: JSONBody[StopIn], identity: FromDishka[Identity], activate: FromDishka[ActivateEmergencyStop],
    refresh: FromDishka[ReadModelRefresh], read_models: FromDishka[ReadModels],
) -> StopOut:
    result = await activate(_user(identity), data.reason, _user(identity))
    await refresh()
    reason = await read_models.halted(_user(identity))
    since = result.already_active_since
    note = None if since is None else f"already active since {since.isoformat()}; nothing new recorded"
    return StopOut(reason is not None, reason, result.cancelled_orders, result.cancel_failures, since, note)


@delete("/emergency-stop", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409),
        summary="Clear your emergency stop (a global stop stays; none active: says so)")
async def clear_stop(
    identity: FromDishka[Identity], clear: FromDishka[ClearEmergencyStop],
    refresh: FromDishka[ReadModelRefresh], read_models: FromDishka[ReadModels],
) -> StopOut:
    cleared = await clear(_user(identity), _user(identity))
    await refresh()
    reason = await read_models.halted(_user(identity))
    note = None if cleared else "no emergency stop of yours was active; nothing to clear"
    return StopOut(reason is not None, reason, note=note)


@get("/agents", responses=error_responses(*AUTH), summary="The worker agents' last heartbeats")
async def agents(identity: FromDishka[Identity], board: FromDishka[AgentStatusBoard],
                 wall: FromDishka[WallClock]) -> list[AgentOut]:
    now = wall.now()
    return [AgentOut.of(s, s.is_stale(now)) for s in await board.statuses()]


API_HANDLERS = [
    me, get_credentials, put_credentials, delete_credentials, test_credentials,
    get_settings, put_settings, list_strategies, get_strategy, put_strategy, delete_strategy,
    list_listings, calendar,
    list_targets, create_target, get_target, update_target, cancel_target, target_history,
    portfolio, list_positions, get_position, trades, daily_pnl, audit,
    get_stop, activate_stop, clear_stop, agents,
    *TELEGRAM_HANDLERS,
    *NOTIFICATION_HANDLERS,
]


def api_router() -> DishkaRouter:
    from entrypoints.http.cockpit_routes import COCKPIT_HANDLERS  # it imports this module

    return DishkaRouter("/api/v1", route_handlers=[*API_HANDLERS, *COCKPIT_HANDLERS], security=[{"bearer": []}])
