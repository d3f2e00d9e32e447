"""MexcListingFeed: the ListingFeed port over MEXC's (undocumented) web endpoints.

- calendar():      GET {web}/api/operation/new_coin_calendar?timestamp=<ms>
                   -> data.newCoins[] {vcoinId, vcoinName, vcoinNameFull, firstOpenTime}
- symbol_states(): GET {web}/api/platform/spot/market-v2/web/symbolsV2
                   -> data.symbols, either {"USDT": [...], ...} or a flat list of
                   {cd, vn, sts, st, tt, ot, ...}

These endpoints are not an API contract, so parsing is defensive on two levels:

* One bad entry (not an object, a key missing, a wrong type, a negative or absurd number,
  a ticker that is not a symbol) is dropped, logged with its reason at WARNING, and
  counted in `dropped` (per feed) and `drop_reasons` (per feed and reason). The good
  entries around it are still returned.
* A payload that cannot be read at all (HTTP error, transport error, not JSON, not an
  object, the list missing, a non-success `code`) raises `ListingFeedUnavailable`, an
  ApplicationError: the calling worker logs it and polls again later. Nothing here ever
  places an order.

Calendar entries are USDT pairs (the calendar announces spot listings against USDT). When
symbolsV2 groups by quote currency only the configured quote assets are read (default
USDT), so one coin id maps to one report; a flat list is read whole, first entry per coin
id wins (a repeated coin id is counted as a duplicate).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from application.errors import ListingFeedUnavailable
from application.ports import CalendarEntry, Clock, SymbolStateReport
from domain.errors import InvalidValue
from domain.values import Symbol, SymbolState

log = logging.getLogger(__name__)

DEFAULT_WEB_URL = "https://www.mexc.com"
CALENDAR_PATH = "/api/operation/new_coin_calendar"
SYMBOLS_PATH = "/api/platform/spot/market-v2/web/symbolsV2"

CALENDAR = "calendar"
SYMBOLS = "symbols"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Nothing MEXC lists opened before this; an earlier "ms" time is garbage (or seconds).
_EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
# State codes seen are single digits; anything past this is not a state code.
_MAX_STATE_CODE = 99
_MAX_TEXT = 200


class _BadEntry(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class MexcListingFeed:
    """ListingFeed over an injected httpx.AsyncClient (its lifetime is the caller's)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        web_url: str | None = None,
        *,
        clock: Clock | None = None,
        quote_assets: frozenset[str] = frozenset({"USDT"}),
        calendar_quote: str = "USDT",
        max_launch_ahead: timedelta = timedelta(days=366),
        timeout: httpx.Timeout | float = 10.0,
    ) -> None:
        self.client = client
        self.web_url = (web_url or DEFAULT_WEB_URL).rstrip("/")  # entrypoints pass MEXC_WEB_URL
        self.clock = clock
        self.quote_assets = quote_assets
        self.calendar_quote = calendar_quote
        self.max_launch_ahead = max_launch_ahead
        self.timeout = timeout
        # Dropped entries: `dropped` per feed, `drop_reasons` per "feed:reason".
        self.dropped: Counter[str] = Counter()
        self.drop_reasons: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    # --- the port ------------------------------------------------------------------------

    async def calendar(self) -> list[CalendarEntry]:
        now = self._now()
        payload = await self._get_json(CALENDAR, CALENDAR_PATH, {"timestamp": str(_to_ms(now))})
        coins = self._data_member(CALENDAR, payload, "newCoins")
        if not isinstance(coins, list):
            raise self._unavailable(CALENDAR, f"data.newCoins is {type(coins).__name__}, not a list")
        entries: list[CalendarEntry] = []
        seen: set[str] = set()
        for index, raw in enumerate(coins):
            try:
                entry = self._calendar_entry(raw, now)
                if entry.coin_id in seen:
                    raise _BadEntry("duplicate", f"coin id {entry.coin_id} repeated")
            except _BadEntry as bad:
                self._drop(CALENDAR, f"newCoins[{index}]", bad, raw)
                continue
            seen.add(entry.coin_id)
            entries.append(entry)
        return entries

    async def symbol_states(self) -> list[SymbolStateReport]:
        now = self._now()
        payload = await self._get_json(SYMBOLS, SYMBOLS_PATH, None)
        symbols = self._data_member(SYMBOLS, payload, "symbols")
        groups: list[tuple[str, str | None, list[Any]]] = []
        if isinstance(symbols, list):
            groups.append(("symbols", None, symbols))
        elif isinstance(symbols, dict):
            for quote, group in symbols.items():
                if quote not in self.quote_assets:
                    continue
                where = f"symbols.{quote}"
                if not isinstance(group, list):
                    self._drop(SYMBOLS, where, _BadEntry("group_not_list", f"group is {type(group).__name__}"), group)
                    continue
                groups.append((where, quote, group))
        else:
            raise self._unavailable(SYMBOLS, f"data.symbols is {type(symbols).__name__}, not an object or a list")
        reports: list[SymbolStateReport] = []
        seen: set[str] = set()
        for where, quote, group in groups:
            for index, raw in enumerate(group):
                try:
                    report = self._state_report(raw, quote, now)
                    if report.coin_id in seen:
                        raise _BadEntry("duplicate", f"coin id {report.coin_id} repeated")
                except _BadEntry as bad:
                    self._drop(SYMBOLS, f"{where}[{index}]", bad, raw)
                    continue
                seen.add(report.coin_id)
                reports.append(report)
        return reports

    # --- entries ---------------------------------------------------------------------------

    def _calendar_entry(self, raw: object, now: datetime) -> CalendarEntry:
        if not isinstance(raw, dict):
            raise _BadEntry("not_object", f"entry is {type(raw).__name__}")
        coin_id = _identifier(raw, "vcoinId")
        ticker = _ticker(raw, "vcoinName")
        full_name = _optional_text(raw, "vcoinNameFull") or ticker
        symbol = _symbol(ticker, self.calendar_quote)
        launch_ms = _epoch_ms(raw, "firstOpenTime", now, self.max_launch_ahead, required=True)
        if launch_ms is None:  # not reached: required=True refuses an entry without it
            raise _BadEntry("missing_firstOpenTime", "firstOpenTime is missing")
        return CalendarEntry(coin_id, ticker, full_name, symbol, _from_ms(launch_ms))

    def _state_report(self, raw: object, quote: str | None, now: datetime) -> SymbolStateReport:
        if not isinstance(raw, dict):
            raise _BadEntry("not_object", f"entry is {type(raw).__name__}")
        coin_id = _identifier(raw, "cd")
        ticker = _ticker(raw, "vn")
        if quote is not None:
            _symbol(ticker, quote)
        sts, st, tt = (_state_code(raw, key) for key in ("sts", "st", "tt"))
        open_ms = _epoch_ms(raw, "ot", now, self.max_launch_ahead, required=False)
        try:
            state = SymbolState(sts, st, tt, open_ms)
        except InvalidValue as exc:  # pragma: no cover - the checks above are stricter
            raise _BadEntry("invalid_state", str(exc)) from None
        return SymbolStateReport(coin_id, ticker, state)

    # --- transport and envelope -------------------------------------------------------------

    async def _get_json(self, feed: str, path: str, params: dict[str, str] | None) -> dict[str, Any]:
        url = self.web_url + path
        try:
            response = await self.client.get(url, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise self._unavailable(feed, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise self._unavailable(feed, f"HTTP {response.status_code} from {path}")
        try:
            payload = response.json()
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError
            content_type = response.headers.get("content-type", "?")
            raise self._unavailable(feed, f"response is not JSON ({content_type})") from exc
        if not isinstance(payload, dict):
            raise self._unavailable(feed, f"response is a JSON {type(payload).__name__}, not an object")
        code = payload.get("code")
        if code is not None and code not in (0, 200, "0", "200"):
            raise self._unavailable(feed, f"code {code!r}: {str(payload.get('msg', ''))[:_MAX_TEXT]}")
        return payload

    def _data_member(self, feed: str, payload: dict[str, Any], key: str) -> Any:
        data = payload.get("data")
        if not isinstance(data, dict):
            raise self._unavailable(feed, f"data is {type(data).__name__}, not an object")
        if key not in data:
            raise self._unavailable(feed, f"data.{key} is missing")
        return data[key]

    def _unavailable(self, feed: str, reason: str) -> ListingFeedUnavailable:
        self.failures[feed] += 1
        log.warning("MEXC %s feed unavailable: %s", feed, reason)
        return ListingFeedUnavailable(feed, reason)

    def _drop(self, feed: str, where: str, bad: _BadEntry, raw: object) -> None:
        self.dropped[feed] += 1
        self.drop_reasons[f"{feed}:{bad.code}"] += 1
        log.warning("MEXC %s: dropped %s (%s: %s): %.200r", feed, where, bad.code, bad.detail, raw)

    def _now(self) -> datetime:
        if self.clock is not None:
            return self.clock.now()
        return datetime.now(UTC)


# --- field parsers (raise _BadEntry) ----------------------------------------------------------

def _identifier(raw: dict[str, Any], key: str) -> str:
    if key not in raw or raw[key] is None:
        raise _BadEntry(f"missing_{key}", f"{key} is missing")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _BadEntry(f"bad_{key}", f"{key} is {type(value).__name__}")
    text = str(value).strip()
    if not text or len(text) > _MAX_TEXT or not text.isprintable():
        raise _BadEntry(f"bad_{key}", f"{key} is empty or unprintable: {text[:40]!r}")
    return text


def _ticker(raw: dict[str, Any], key: str) -> str:
    if key not in raw or raw[key] is None:
        raise _BadEntry(f"missing_{key}", f"{key} is missing")
    value = raw[key]
    if not isinstance(value, str):
        raise _BadEntry(f"bad_{key}", f"{key} is {type(value).__name__}, not a string")
    ticker = value.strip().upper()
    try:
        Symbol(ticker, "USDT")  # validates the asset code: 1-16 of A-Z0-9
    except InvalidValue:
        raise _BadEntry(f"bad_{key}", f"ticker {value[:40]!r} is not an asset code") from None
    return ticker


def _symbol(ticker: str, quote: str) -> Symbol:
    try:
        return Symbol(ticker, quote)
    except InvalidValue as exc:
        raise _BadEntry("bad_symbol", str(exc)) from None


def _optional_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        return ""
    return value.strip()[:_MAX_TEXT]


def _integer(value: object, key: str) -> int:
    """An int given as int, integral float or a string of digits; bool refused."""
    if isinstance(value, bool):
        raise _BadEntry(f"bad_{key}", f"{key} is a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _BadEntry(f"bad_{key}", f"{key} is not whole: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        sign = text[:1] in ("-", "+")
        if text[sign:].isdigit() and text[sign:].isascii() and len(text) <= 20:
            return int(text)
        raise _BadEntry(f"bad_{key}", f"{key} is not a number: {text[:40]!r}")
    raise _BadEntry(f"bad_{key}", f"{key} is {type(value).__name__}")


def _state_code(raw: dict[str, Any], key: str) -> int:
    if key not in raw or raw[key] is None:
        raise _BadEntry(f"missing_{key}", f"{key} is missing")
    value = _integer(raw[key], key)
    if not 0 <= value <= _MAX_STATE_CODE:
        raise _BadEntry(f"bad_{key}", f"{key} out of range: {value}")
    return value


def _epoch_ms(raw: dict[str, Any], key: str, now: datetime, ahead: timedelta, *, required: bool) -> int | None:
    value = raw.get(key)
    if value is None or (not isinstance(value, bool) and value in ("", 0, "0")):
        if required:
            raise _BadEntry(f"missing_{key}", f"{key} is missing")
        return None
    ms = _integer(value, key)
    if ms < 0:
        raise _BadEntry(f"bad_{key}", f"{key} is negative: {ms}")
    if ms < _to_ms(_EARLIEST) or ms > _to_ms(now + ahead):
        raise _BadEntry(f"bad_{key}", f"{key} is not a plausible epoch-ms time: {ms}")
    return ms


def _to_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
