"""SnipeTarget: one user's intent to buy one listing at launch."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from enum import Enum

from domain.aggregate import Aggregate
from domain.errors import InvalidTransition, InvalidValue
from domain.events import (
    Cause,
    DomainEvent,
    RiskCheckFailed,
    SnipeExpired,
    SnipeFailed,
    SnipeOrderFilled,
    SnipeOrderRejected,
    SnipeOrderSubmitted,
    SnipeScheduled,
    SnipeTargetAmended,
    SnipeTargetCancelled,
    SnipeTargetCreated,
    SnipeTargetReady,
)
from domain.exit_plans import ExitPlan
from domain.values import ClientOrderId, Symbol, to_decimal


class TargetStatus(Enum):
    WATCHING = "watching"
    READY = "ready"
    SCHEDULED = "scheduled"
    EXECUTING = "executing"
    FILLED = "filled"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {TargetStatus.FILLED, TargetStatus.FAILED, TargetStatus.CANCELLED, TargetStatus.EXPIRED}
_OPEN_BEFORE_SEND = {TargetStatus.WATCHING, TargetStatus.READY, TargetStatus.SCHEDULED}


def target_stream(target_id: str) -> str:
    return f"target-{target_id}"


# An entry price cap is a positive decimal of at most this many digits before and after the point
# (as the API's money pattern): an exchange price scale never goes further.
MAX_CAP_INTEGER_DIGITS = 20
MAX_CAP_PLACES = 18


def entry_price_cap(value: object, what: str = "max entry price") -> Decimal | None:
    """A checked entry price cap (None stays None: no cap, a market buy). Raises InvalidValue
    naming the value when it is not positive or has more digits than any exchange price."""
    if value is None:
        return None
    cap = to_decimal(value, what)
    if cap <= 0:
        raise InvalidValue(f"{what} must be positive, got {cap}")
    sign, digits, exponent = cap.as_tuple()
    if not isinstance(exponent, int):  # not reached: to_decimal refuses what is not finite
        raise InvalidValue(f"{what} must be a finite number, got {cap}")
    places = max(0, -exponent)
    if places > MAX_CAP_PLACES:
        raise InvalidValue(f"{what} has {places} decimal places, at most {MAX_CAP_PLACES}: {cap}")
    if len(digits) + exponent > MAX_CAP_INTEGER_DIGITS:
        raise InvalidValue(f"{what} has more than {MAX_CAP_INTEGER_DIGITS} digits before the point: {cap}")
    return cap


def snipe_client_order_id(target_id: str) -> ClientOrderId:
    """Derived from the target, so every attempt (and every worker) sends the same id:
    the exchange and our query-before-resend see one order, never two."""
    return ClientOrderId("snp" + hashlib.sha256(target_id.encode()).hexdigest()[:24])


class SnipeTarget(Aggregate):
    kind = "snipe target"

    def _blank(self) -> None:
        self.target_id = ""
        self.coin_id = ""
        self.symbol: Symbol | None = None
        self.launch_at: datetime | None = None
        self.quote_amount = Decimal(0)
        self.quote_asset = "USDT"
        self.exit_plan: ExitPlan | None = None
        self.confidence = Decimal(0)
        self.live = False
        self.status = TargetStatus.WATCHING
        self.execute_at: datetime | None = None
        self.deadline_at: datetime | None = None
        self.client_order_id: str | None = None
        self.fill: SnipeOrderFilled | None = None
        self.failure: str | None = None
        # The highest price the entry may pay: an IMMEDIATE_OR_CANCEL limit buy at it (None: market).
        self.max_entry_price: Decimal | None = None
        # The lease the run that submitted the order held: fencing token and fence epoch (None: not known).
        self.lease_token: int | None = None
        self.lease_epoch: str | None = None

    @classmethod
    def create(
        cls,
        target_id: str,
        user_id: str,
        coin_id: str,
        symbol: Symbol,
        launch_at: datetime,
        quote_amount: Decimal,
        exit_plan: ExitPlan,
        confidence: Decimal,
        live: bool,
        cause: Cause,
        max_entry_price: Decimal | None = None,
    ) -> SnipeTarget:
        amount = to_decimal(quote_amount, "quote amount")
        if amount <= 0:
            raise InvalidValue(f"quote amount must be positive: {amount}")
        if not user_id:
            raise InvalidValue("a snipe target belongs to a user")
        if launch_at.tzinfo is None:
            raise InvalidValue("launch time must carry a time zone")
        conf = to_decimal(confidence, "confidence")
        if not (0 <= conf <= 1):
            raise InvalidValue(f"confidence must be between 0 and 1: {conf}")
        cap = entry_price_cap(max_entry_price)
        target = cls(target_stream(target_id), user_id)
        target._blank()
        target._record(
            SnipeTargetCreated(target_id, coin_id, symbol.code, launch_at, amount, symbol.quote, exit_plan, conf, live,
                               cap),
            cause,
        )
        return target

    # --- commands -------------------------------------------------------------------

    def mark_ready(self, pattern: str, confidence: Decimal, lead_seconds: int, cause: Cause) -> None:
        self._require({TargetStatus.WATCHING}, "become ready")
        conf = to_decimal(confidence, "confidence")
        if not (0 <= conf <= 1):
            raise InvalidValue(f"confidence must be between 0 and 1: {conf}")
        self._record(SnipeTargetReady(self.target_id, pattern, conf, lead_seconds), cause)

    def schedule(self, execute_at: datetime, deadline_at: datetime, cause: Cause) -> None:
        self._require({TargetStatus.READY}, "be scheduled")
        if deadline_at <= execute_at:
            raise InvalidValue("snipe deadline must come after its start")
        coid = snipe_client_order_id(self.target_id)
        self._record(SnipeScheduled(self.target_id, execute_at, deadline_at, coid.value), cause)

    def submit_order(self, cause: Cause, lease_token: int | None = None, lease_epoch: str | None = None) -> None:
        """Recorded before the first send; with the submitting run's lease (token and fence epoch),
        so a later run can tell whether the lock service lost its data since."""
        self._require({TargetStatus.SCHEDULED}, "submit its order")
        if self.symbol is None or self.client_order_id is None:  # not reached: scheduling set both
            raise InvalidTransition(f"snipe target {self.target_id}", self.status.value, "submit an order unscheduled")
        self._record(SnipeOrderSubmitted(self.target_id, self.client_order_id, self.symbol.code, self.quote_amount,
                                         self.max_entry_price, lease_token, lease_epoch), cause)

    def record_fill(
        self,
        exchange_order_id: str,
        price: Decimal,
        quantity: Decimal,
        quote_spent: Decimal,
        fee: Decimal,
        fee_asset: str,
        attempts: int,
        latency_ms: Decimal,
        cause: Cause,
        halt_read_age_ms: int | None = None,
    ) -> None:
        self._require({TargetStatus.EXECUTING}, "record a fill")
        if price <= 0 or quantity <= 0 or quote_spent <= 0 or fee < 0:
            raise InvalidValue(
                f"a fill needs positive price, quantity and amount: {price} x {quantity} = {quote_spent}"
            )
        if self.client_order_id is None:  # not reached: EXECUTING has an order id
            raise InvalidTransition(f"snipe target {self.target_id}", self.status.value, "record a fill unsent")
        self._record(
            SnipeOrderFilled(
                self.target_id, self.client_order_id, exchange_order_id, price, quantity, quote_spent, fee, fee_asset,
                attempts, latency_ms, halt_read_age_ms,
            ),
            cause,
        )

    def record_rejection(self, code: str, reason: str, attempts: int, cause: Cause) -> None:
        self._require({TargetStatus.EXECUTING}, "record a rejection")
        if self.client_order_id is None:  # not reached: EXECUTING has an order id
            raise InvalidTransition(f"snipe target {self.target_id}", self.status.value, "record a rejection unsent")
        self._record(SnipeOrderRejected(self.target_id, self.client_order_id, code, reason, attempts), cause)
        self._record(SnipeFailed(self.target_id, f"order rejected: {reason}"), cause)

    def fail(self, reason: str, cause: Cause) -> None:
        self._require(_OPEN_BEFORE_SEND | {TargetStatus.EXECUTING}, "fail")
        self._record(SnipeFailed(self.target_id, reason), cause)

    def refuse_by_risk(self, reasons: list[str], cause: Cause) -> None:
        self._require(_OPEN_BEFORE_SEND, "be refused by risk checks")
        if not reasons:
            raise InvalidValue("a risk refusal needs at least one reason")
        self._record(RiskCheckFailed(self.target_id, tuple(reasons)), cause)
        self._record(SnipeFailed(self.target_id, "refused by risk limits: " + "; ".join(reasons)), cause)

    def expire(self, reason: str, cause: Cause) -> None:
        self._require(_OPEN_BEFORE_SEND, "expire")
        self._record(SnipeExpired(self.target_id, reason), cause)

    def cancel(self, reason: str, by: str, cause: Cause) -> None:
        self._require(_OPEN_BEFORE_SEND, "be cancelled")
        self._record(SnipeTargetCancelled(self.target_id, reason, by), cause)

    def amend(
        self, quote_amount: Decimal, exit_plan: ExitPlan, by: str, cause: Cause, max_entry_price: Decimal | None = None,
    ) -> None:
        """Change amount, exit plan and entry price cap (None: none) while no order was sent (the
        risk checks run again at launch)."""
        self._require(_OPEN_BEFORE_SEND, "be amended")
        amount = to_decimal(quote_amount, "quote amount")
        if amount <= 0:
            raise InvalidValue(f"quote amount must be positive: {amount}")
        cap = entry_price_cap(max_entry_price)
        self._record(SnipeTargetAmended(self.target_id, amount, exit_plan, by, cap), cause)

    def _require(self, allowed: set[TargetStatus], action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(f"snipe target {self.target_id}", self.status.value, action)

    # --- fold -----------------------------------------------------------------------

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case SnipeTargetCreated():
                self.target_id = event.target_id
                self.coin_id = event.coin_id
                self.quote_asset = event.quote_asset
                self.symbol = Symbol.parse(event.symbol, event.quote_asset)
                self.launch_at = event.launch_at
                self.quote_amount = event.quote_amount
                self.exit_plan = event.exit_plan
                self.confidence = event.confidence
                self.live = event.live
                self.max_entry_price = event.max_entry_price
                self.status = TargetStatus.WATCHING
            case SnipeTargetReady():
                self.confidence = event.confidence
                self.status = TargetStatus.READY
            case SnipeScheduled():
                self.execute_at = event.execute_at
                self.deadline_at = event.deadline_at
                self.client_order_id = event.client_order_id
                self.status = TargetStatus.SCHEDULED
            case SnipeOrderSubmitted():
                self.lease_token = event.lease_token
                self.lease_epoch = event.lease_epoch
                self.status = TargetStatus.EXECUTING
            case SnipeOrderFilled():
                self.fill = event
                self.status = TargetStatus.FILLED
            case SnipeOrderRejected() | RiskCheckFailed():
                pass
            case SnipeFailed():
                self.failure = event.reason
                self.status = TargetStatus.FAILED
            case SnipeExpired():
                self.failure = event.reason
                self.status = TargetStatus.EXPIRED
            case SnipeTargetCancelled():
                self.failure = event.reason
                self.status = TargetStatus.CANCELLED
            case SnipeTargetAmended():
                self.quote_amount = event.quote_amount
                self.exit_plan = event.exit_plan
                self.max_entry_price = event.max_entry_price
            case _:
                raise TypeError(f"snipe target cannot apply {type(event).__name__}")
