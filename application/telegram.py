"""Telegram control: linking a chat to a user with a one-time code, and the bot's commands.

Every command acts for the user the chat is linked to, through the same use cases as the API
(a halt is recorded as that person's, by their user id; a close goes through the close-position
use case). A chat that is not linked gets one refusal line and nothing else happens.

The bot's transport (long polling or a webhook) is the entrypoint's; this module only answers a
message with a text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from application import repository
from application.errors import AccountUnavailable, ApplicationError, ConcurrencyConflict, NotFound
from application.notifications import LinkTelegramChat, UnlinkTelegramChat
from application.ports import Clock, EventStore, ReadModels
from application.use_cases.queries import GetTraderStatus, PricedPosition
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from domain.errors import DomainError
from domain.events import Cause
from domain.telegram import (
    CODE_ALPHABET,
    CODE_LENGTH,
    TELEGRAM_LINKS_STREAM,
    LinkCodeRefused,
    TelegramLinks,
    code_hash,
)
from domain.values import quantize_money

_log = logging.getLogger(__name__)

# A link or unlink that loses a race for the stream's version is retried this many times.
_ATTEMPTS = 3
# Targets still to be sniped (shown by /targets and counted by /status).
PENDING_TARGETS = ("watching", "ready", "scheduled", "executing")
DAILY_DAYS = 7
HALT_DEFAULT_REASON = "halted from Telegram"
# Wrong link codes one chat may send in LINK_ATTEMPTS_WINDOW before its /link is refused unread.
LINK_ATTEMPTS = 5
LINK_ATTEMPTS_WINDOW = timedelta(minutes=10)
_LINK_CHATS_KEPT = 10_000  # chats whose wrong codes are remembered (the oldest forgotten first)
TOO_MANY_CODES = "Too many wrong codes from this chat: ask for a new code and try again in 10 minutes."
FORWARDED = "A forwarded message is not taken as a command: type it in this chat."

NOT_LINKED = "This chat is not linked to a mexc-sniper account: ask the API for a code " \
             "(POST /api/v1/telegram/link) and send /link CODE here."


# --- the port to the Bot API -------------------------------------------------------------------

class BotApiUnavailable(ApplicationError):
    """Telegram could not be reached, or refused the call (a bad token, a webhook set)."""


class BotApiRateLimited(BotApiUnavailable):
    """Telegram asks to wait `retry_after` before the next call (HTTP 429: about one message a
    second per chat, thirty a second per bot)."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BotMessage:
    """One text message the bot received (an update of kind message)."""

    update_id: int
    chat_id: int
    text: str
    private: bool = True  # a one-to-one chat with the bot, not a group or channel
    message_id: int | None = None  # the answer is sent as a reply to it (a notification is not)
    forwarded: bool = False  # forwarded from another chat or person: never taken as a command


class BotApi(Protocol):
    """The Telegram Bot API as the bot uses it."""

    # The long poll's length, sent to Telegram (getUpdates timeout=): not a deadline of this coroutine.
    async def updates(self, offset: int | None, timeout: timedelta) -> list[BotMessage]:  # noqa: ASYNC109
        """The messages after `offset` (confirming those before it), waiting up to `timeout` for
        one (long polling). Raises BotApiUnavailable when Telegram cannot be reached."""
        ...

    async def send(self, chat_id: int, text: str, reply_to: int | None = None) -> None:
        """Send `text` to the chat, as a reply to message `reply_to` when given."""
        ...

    async def bot_name(self) -> str:
        """The bot's @username."""
        ...


# --- linking -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LinkCode:
    code: str
    expires_at: datetime


async def _links(store: EventStore) -> TelegramLinks:
    found = await repository.find(store, TelegramLinks, TELEGRAM_LINKS_STREAM)
    return found if found is not None else TelegramLinks.new()


async def _record(store: EventStore, change: Callable[[TelegramLinks], Any]) -> Any:
    """Apply `change` to the links as stored now and save; on a lost race, once more on the newer state."""
    for attempt in range(_ATTEMPTS):
        links = await _links(store)
        answer = change(links)
        try:
            await repository.save(store, links)
            return answer
        except ConcurrencyConflict:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class IssueTelegramLinkCode:
    """A one-time code for the user to send to the bot (`/link CODE`); short-lived, single use,
    stored hashed. A new code replaces the user's earlier unused one."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str) -> LinkCode:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        cause = Cause(self.clock.now(), "telegram-link")
        expires = await _record(self.store, lambda links: links.issue(user_id, code_hash(code), cause))
        return LinkCode(code, expires)


async def _stop_notifying(store: EventStore, clock: Clock, user_id: str, chat_id: int) -> None:
    """The user's Telegram notifications stop going to a chat that is theirs no more (their
    Telegram channel turned off when it points there). Best effort: the unlink stands anyway."""
    for attempt in range(_ATTEMPTS):
        try:
            await UnlinkTelegramChat(store, clock)(user_id, str(chat_id))
            return
        except ConcurrencyConflict:
            if attempt == _ATTEMPTS - 1:
                _log.warning("telegram chat unlinked from %s, but their Telegram notifications are still on: "
                             "their settings kept changing meanwhile", user_id)
        except Exception:  # noqa: BLE001 - the unlink stands; the settings can be changed through the API
            _log.exception("telegram chat unlinked from %s, but their Telegram notifications are still on", user_id)
            return


class UnlinkTelegram:
    """Unlink every chat of the user; how many were linked (0: nothing recorded). Their Telegram
    notifications to those chats are turned off."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, reason: str = "unlinked by the user") -> int:
        cause = Cause(self.clock.now(), "telegram-link")
        chats = await _record(self.store, lambda links: links.unlink(user_id, reason, cause))
        for chat in chats:
            await _stop_notifying(self.store, self.clock, user_id, chat)
        return len(chats)


class RedeemTelegramLinkCode:
    """Redeem a code sent to the bot: the chat acts for the code's user from now on."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, chat_id: int, code: str) -> str:
        cause = Cause(self.clock.now(), "telegram-link")

        def link(links: TelegramLinks) -> tuple[str | None, str]:
            return links.user_of(chat_id), links.link(chat_id, code_hash(code), cause)

        before, user_id = await _record(self.store, link)
        if before is not None and before != user_id:
            # The chat is someone else's now: the one it acted for gets no more notifications there.
            await _stop_notifying(self.store, self.clock, before, chat_id)
        return str(user_id)


class FindLinkedUser:
    """The user a chat acts for, or None."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, chat_id: int) -> str | None:
        return (await _links(self.store)).user_of(chat_id)


# --- what the commands reach besides the trade history (helper use cases, optional) ------------

class PositionCloser(Protocol):
    """The close-position use case (application/use_cases/positions/close.py ClosePosition)."""

    async def __call__(self, user_id: str, position_id: str, *, requested_by: str | None = None,
                      reason: str = "manual") -> Any: ...


class BalanceQuery(Protocol):
    """The balances query (application/use_cases/queries.py GetBalances)."""

    async def __call__(self, user_id: str) -> Any: ...


# --- the commands ------------------------------------------------------------------------------

HELP = "\n".join([
    "Commands:",
    "/status - trading on or halted, open positions, pending snipes",
    "/positions - your open positions",
    "/profit - realised P&L, fees, invested",
    "/daily - realised P&L per day, last 7 days",
    "/balance - your account balances",
    "/targets - your snipes still to come",
    "/halt [reason] - emergency stop: refuse new orders, cancel open ones",
    "/resume - clear your emergency stop",
    "/close POSITION - sell what a position holds now",
    "/help - this list",
])


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _money(value: Decimal) -> str:
    return format(quantize_money(value), "f")


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


class TelegramCommands:
    """Answers one message: the text to send back, or None to stay silent (an empty message, a
    command addressed to another bot).

    `refresh` brings the read models up to the events recorded so far (the SQL projections);
    `status`, `close` and `balances` are the API's trader-status, close-position and balance use
    cases (ClosePosition, GetBalances); without the latter two the command says it is not
    available in this process."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        read_models: ReadModels,
        activate: ActivateEmergencyStop,
        clear: ClearEmergencyStop,
        *,
        refresh: Callable[[], Awaitable[None]] | None = None,
        close: PositionCloser | None = None,
        balances: BalanceQuery | None = None,
        status: GetTraderStatus | None = None,
        wall: Clock | None = None,
        bot_name: str = "",
    ) -> None:
        self.store, self.clock, self.read_models = store, clock, read_models
        # The API's status query (positions unpriced unless it was given the market's prices).
        self.status = status if status is not None else GetTraderStatus(read_models, store, clock)
        # Heartbeats are on the wall clock, whatever clock the market runs on (a replay's).
        self.wall = wall if wall is not None else clock
        self.activate, self.clear = activate, clear
        self.refresh, self.close, self.balances = refresh, close, balances
        self.bot_name = bot_name.lstrip("@").lower()
        self.find_user = FindLinkedUser(store)
        self.link = RedeemTelegramLinkCode(store, clock)
        self._wrong_codes: dict[int, list[datetime]] = {}  # chat -> when it sent a wrong code (wall clock)

    async def answer(self, message: BotMessage) -> str | None:
        words = message.text.strip().split()
        if not words:
            return None
        command = self._command(words[0])
        if command is None and words[0].startswith("/"):
            return None  # a command addressed to another bot
        args = words[1:]
        if not message.private:
            return "mexc-sniper takes commands in a private chat with the bot only."
        if message.forwarded:
            return FORWARDED if command is not None else None
        if command in ("/start", "/link"):
            return await self._link(message.chat_id, args)
        user_id = await self.find_user(message.chat_id)
        if user_id is None:
            return NOT_LINKED
        if self.refresh is not None:
            await self.refresh()
        handler = self._handlers().get(command or "")
        if handler is None:
            return "Unknown command. /help lists what I understand."
        try:
            return await handler(user_id, args)
        except (ApplicationError, DomainError) as exc:
            return f"Refused: {exc}"

    def _command(self, word: str) -> str | None:
        if not word.startswith("/"):
            return None
        name, _, addressee = word.partition("@")
        if addressee and self.bot_name and addressee.lower() != self.bot_name:
            return None  # meant for another bot
        return name.lower()

    def _handlers(self) -> dict[str, Callable[[str, list[str]], Awaitable[str]]]:
        return {
            "/help": self._help, "/status": self._status, "/positions": self._positions, "/profit": self._profit,
            "/daily": self._daily, "/balance": self._balance, "/targets": self._targets, "/halt": self._halt,
            "/resume": self._resume, "/close": self._close,
        }

    async def _link(self, chat_id: int, args: list[str]) -> str:
        if not args:
            if await self.find_user(chat_id) is not None:
                return "This chat is linked. /help lists the commands."
            return NOT_LINKED
        now = self.wall.now()
        recent = [at for at in self._wrong_codes.get(chat_id, []) if now - at < LINK_ATTEMPTS_WINDOW]
        if len(recent) >= LINK_ATTEMPTS:
            return TOO_MANY_CODES  # a guesser gets no answer about the code itself
        try:
            user_id = await self.link(chat_id, "".join(args))
        except LinkCodeRefused as exc:
            self._wrong_codes.pop(chat_id, None)
            if len(self._wrong_codes) >= _LINK_CHATS_KEPT:
                self._wrong_codes.pop(next(iter(self._wrong_codes)))
            self._wrong_codes[chat_id] = [*recent, now]
            return str(exc)
        self._wrong_codes.pop(chat_id, None)
        _log.info("telegram chat linked to user %s", user_id)
        try:
            # The user's notifications go to this chat from now on (their Telegram channel, turned on).
            await LinkTelegramChat(self.store, self.clock)(user_id, str(chat_id))
        except Exception:  # noqa: BLE001 - the link stands; the notification settings can be set through the API
            _log.exception("telegram chat linked to %s, but their notification channel was not pointed at it", user_id)
        return f"Linked: this chat now acts for {user_id}. /help lists the commands."

    async def _help(self, user_id: str, args: list[str]) -> str:
        return HELP

    async def _status(self, user_id: str, args: list[str]) -> str:
        status = await self.status(user_id)
        pending = await self.read_models.targets(user_id, set(PENDING_TARGETS))
        lines = [f"Trading: HALTED ({stop.describe()})" for stop in status.stops] or ["Trading: on"]
        quote = status.open_positions[0].position.quote_asset if status.open_positions else "USDT"
        unrealised = "" if status.unrealised is None else f", unrealised {_money(status.unrealised)}"
        lines.append(f"Open positions: {len(status.open_positions)}"
                     + (f" (cost {_money(status.open_exposure)} {quote}{unrealised})" if status.open_positions else ""))
        lines.append(f"Realised P&L: today {_money(status.realised_today)}, total {_money(status.realised_total)}")
        lines.append(f"Snipes to come: {len(pending)}")
        if pending:
            first = min(pending, key=lambda t: t.launch_at)
            lines.append(f"Next: {first.symbol} at {_when(first.launch_at)} ({first.status})")
        if status.agents:
            now = self.wall.now()
            down = [a.name for a in status.agents if not a.is_current(now)]
            late = f", not current: {', '.join(down)}" if down else ""
            lines.append(f"Agents: {len(status.agents) - len(down)} ok{late}")
        return "\n".join(lines)

    async def _positions(self, user_id: str, args: list[str]) -> str:
        found = (await self.status(user_id)).open_positions
        if not found:
            return "No open positions."
        return "\n".join(["Open positions:", *(_position_line(p) for p in found)])

    async def _profit(self, user_id: str, args: list[str]) -> str:
        positions = await self.read_models.positions(user_id)
        realised = sum((p.realised_pnl for p in positions), Decimal(0))
        fees = sum((p.fees for p in positions), Decimal(0))
        invested = sum((p.cost for p in positions), Decimal(0))
        closed = sum(1 for p in positions if p.status == "closed")
        quote = positions[0].quote_asset if positions else "USDT"
        return "\n".join([
            f"Realised P&L: {_money(realised)} {quote}",
            f"Fees: {_money(fees)} {quote}",
            f"Invested: {_money(invested)} {quote}",
            f"Positions: {len(positions)} ({closed} closed, {len(positions) - closed} open)",
        ])

    async def _daily(self, user_id: str, args: list[str]) -> str:
        today = self.clock.now().astimezone(UTC).date()
        start = today - timedelta(days=DAILY_DAYS - 1)
        rows = {r.day: r.realised_pnl for r in await self.read_models.daily_pnl(user_id, start, today)}
        lines = [f"Realised P&L per day (UTC), last {DAILY_DAYS} days:"]
        for offset in range(DAILY_DAYS):
            day = today - timedelta(days=offset)
            lines.append(f"{day.isoformat()}: {_money(rows.get(day, Decimal(0)))}")
        lines.append(f"Total: {_money(sum(rows.values(), Decimal(0)))}")
        return "\n".join(lines)

    async def _balance(self, user_id: str, args: list[str]) -> str:
        if self.balances is None:
            return "Balances are not available from this process."
        try:
            view = await self.balances(user_id)
        except AccountUnavailable as exc:
            return f"No account to read: {exc}"
        except ApplicationError as exc:
            return f"The balances could not be read: {exc}"
        rows: Sequence[Any] = getattr(view, "balances", [])
        mode = getattr(view, "mode", "")
        lines = [f"Balances ({mode}):" if mode else "Balances:"]
        lines += [f"{b.asset}: {_amount(b.free)} free, {_amount(b.locked)} locked" for b in rows] or ["(none)"]
        return "\n".join(lines)

    async def _targets(self, user_id: str, args: list[str]) -> str:
        pending = await self.read_models.targets(user_id, set(PENDING_TARGETS))
        if not pending:
            return "No snipes to come."
        lines = ["Snipes to come:"]
        for t in sorted(pending, key=lambda t: t.launch_at):
            mode = "live" if t.live else "paper"
            lines.append(f"{t.target_id} {t.symbol} {_money(t.quote_amount)} at {_when(t.launch_at)} "
                         f"({t.status}, {mode}, exit {t.exit_strategy})")
        return "\n".join(lines)

    async def _halt(self, user_id: str, args: list[str]) -> str:
        reason = " ".join(args).strip() or HALT_DEFAULT_REASON
        result = await self.activate(user_id, reason, user_id)  # the person's own stop, as the API records it
        if result.already_active_since is not None:
            head = f"Already halted since {_when(result.already_active_since)}: {result.reason}. Nothing new recorded."
        else:
            head = f"Trading halted: {result.reason}. New orders are refused until you /resume."
        lines = [head]
        if result.cancelled_orders:
            lines.append(f"Cancelled {len(result.cancelled_orders)} open order(s).")
        if result.cancel_failures:
            lines.append(f"Could not cancel: {'; '.join(result.cancel_failures)}")
        return "\n".join(lines)

    async def _resume(self, user_id: str, args: list[str]) -> str:
        cleared = await self.clear(user_id, user_id)
        still = (await self.status(user_id)).stops
        head = "Emergency stop cleared." if cleared else "No emergency stop of yours was active; nothing to clear."
        if not still:
            return head + "\nTrading: on"
        return head + "".join(f"\nStill halted: {stop.describe()}" for stop in still)

    async def _close(self, user_id: str, args: list[str]) -> str:
        if len(args) != 1:
            return "Usage: /close POSITION (the position id, as /positions shows it)"
        if self.close is None:
            return "Closing positions is not available from this process."
        position_id = args[0]
        try:
            closure = await self.close(user_id, position_id, requested_by=user_id, reason="manual")
        except NotFound:
            return f"No position {position_id} of yours."
        return _closure_text(position_id, closure)


def _position_line(priced: PricedPosition) -> str:
    p = priced.position
    now = "" if priced.current_price is None else \
        f", now {_amount(priced.current_price)} (unrealised {_money(priced.unrealised_pnl or Decimal(0))})"
    return (f"{p.position_id} {p.symbol}: {_amount(p.remaining)} left of {_amount(p.quantity)} at entry "
            f"{_amount(p.entry_price)}, cost {_money(p.remaining_cost)} {p.quote_asset}{now}, "
            f"realised {_money(p.realised_pnl)} ({p.status})")


def _closure_text(position_id: str, closure: Any) -> str:
    state = getattr(closure, "state", "")
    if getattr(closure, "already", False):
        return f"{position_id} is {state} already; nothing sent."
    sold: Decimal = getattr(closure, "sold", Decimal(0))
    price: Decimal | None = getattr(closure, "price", None)
    pnl: Decimal = getattr(closure, "realised_pnl", Decimal(0))
    detail = getattr(closure, "detail", "")
    if sold > 0 and price is not None:
        text = f"Sold {_amount(sold)} of {position_id} at {_amount(price)}: {state}, realised P&L {_money(pnl)}."
    else:
        text = f"{position_id}: {state}."
    return text + (f"\n{detail}" if detail else "")
