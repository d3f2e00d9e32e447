"""The cockpit's routes (issue 15): close a position by hand, the account's balances, and the
trader's status in one answer. Handlers only translate, as in routes.py."""

from __future__ import annotations

from dishka import FromDishka
from litestar import get, post
from litestar.status_codes import HTTP_200_OK

from application.identity import Identity
from application.ports import WallClock
from application.use_cases.positions import ClosePosition
from application.use_cases.queries import GetBalances, GetTraderStatus
from entrypoints.http.errors import error_responses
from entrypoints.http.routes import AUTH, PositionId
from entrypoints.http.runtime import ReadModelRefresh
from entrypoints.http.schemas import BalancesOut, PositionCloseOut, StatusOut


@post("/positions/{position_id:str}/close", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 404, 409, 503),
      summary="Close one of your positions now: a market sell of what it holds (asked again: says its state)")
async def close_position(
    position_id: PositionId, identity: FromDishka[Identity], close: FromDishka[ClosePosition],
    refresh: FromDishka[ReadModelRefresh],
) -> PositionCloseOut:
    """Sold through the same exit path as the exit plan's, recorded as your exit (reason
    "manual"). A position closed already, or whose close is on its way, answers its state and
    sells nothing. 409 while a person's emergency stop holds (its reason, who pressed it and
    when), while an exit of its plan is in flight, or when the sell was refused (nothing sold)."""
    closure = await close(identity.user_id, position_id)
    await refresh()
    return PositionCloseOut.of(closure)


@get("/balances", responses=error_responses(*AUTH, 409, 503),
     summary="The balances of the account you trade on: live from MEXC with your keys, or the paper account")
async def balances(identity: FromDishka[Identity], query: FromDishka[GetBalances]) -> BalancesOut:
    """Live when your risk profile trades live (409 without stored MEXC keys, 503 when MEXC
    cannot be asked); else the paper account: SNIPER_PAPER_WALLET of your quote asset plus your
    paper trades' results, and the coins your open paper positions hold."""
    return BalancesOut.of(await query(identity.user_id))


@get("/status", responses=error_responses(*AUTH),
     summary="Am I halted (since when, by whom), what do I hold, what did I make today, the agents' health")
async def status(
    identity: FromDishka[Identity], query: FromDishka[GetTraderStatus], wall: FromDishka[WallClock]
) -> StatusOut:
    return StatusOut.of(await query(identity.user_id), wall.now())


COCKPIT_HANDLERS = [close_position, balances, status]
