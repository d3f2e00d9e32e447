"""An aggregate's snapshot state to and from JSON, as one typed msgspec struct per aggregate.

Each struct lists the aggregate's state fields with their types (the domain's values, exit plans
and events are frozen dataclasses msgspec reads and writes as they are), so a Decimal travels as
its exact string, a datetime with its offset, a set or a tuple as its type. The struct's tag
(`"snapshot": "Position.1"`) names the aggregate and the version of its struct, as an event's
type name does for its payload: change a struct in a way an older snapshot would be misread by,
and bump the number.

Decoding trusts nothing: a tag of another aggregate or version, a missing or unknown field, a
value of another type, an enum value that no longer exists or a decimal that is not finite
raise SnapshotUnreadable, and the repository folds from the first event instead. The tagged
JSON of the format before this one has no tag, so it is unreadable too: those snapshots are
passed over, and replaced when the stream passes its next multiple of `snapshot_every`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from domain.events import ExitOrderSubmitted, SnipeOrderFilled
from domain.exit_plans import ExitPlan
from domain.notifications import NotificationPreferences
from domain.position import PositionStatus
from domain.target import TargetStatus
from domain.trader import TradingPreferences
from domain.values import Symbol


class SnapshotUnreadable(ValueError):
    pass


class _State(msgspec.Struct, forbid_unknown_fields=True, tag_field="snapshot"):
    """Every field is required: a snapshot holds all of an aggregate's state or is not used."""

    user_id: str


class SnipeTargetState(_State, tag="SnipeTarget.1"):
    target_id: str
    coin_id: str
    symbol: Symbol | None
    launch_at: datetime | None
    quote_amount: Decimal
    quote_asset: str
    exit_plan: ExitPlan | None
    confidence: Decimal
    live: bool
    status: TargetStatus
    execute_at: datetime | None
    deadline_at: datetime | None
    client_order_id: str | None
    fill: SnipeOrderFilled | None
    failure: str | None
    max_entry_price: Decimal | None
    lease_token: int | None
    lease_epoch: str | None


class PositionState(_State, tag="Position.1"):
    position_id: str
    target_id: str
    symbol: Symbol | None
    entry_price: Decimal
    quantity: Decimal
    remaining: Decimal
    total_cost: Decimal
    remaining_cost: Decimal
    proceeds: Decimal
    fees: Decimal
    realised_pnl: Decimal
    quantity_scale: int
    exit_plan: ExitPlan | None
    opened_at: datetime | None
    levels_hit: set[int]
    peak_price: Decimal
    pending_exit: ExitOrderSubmitted | None
    failed_exits: dict[str, ExitOrderSubmitted]
    entry_fee_asset: str
    exits: int
    status: PositionStatus


class SafetySwitchState(_State, tag="SafetySwitch.1"):
    scope: str
    active: bool
    reason: str | None
    activated_by: str | None
    automatic: bool
    active_since: datetime | None


class ListingState(_State, tag="Listing.1"):
    coin_id: str
    ticker: str
    full_name: str
    symbol: Symbol | None
    launch_at: datetime | None
    ready: bool


class TraderState(_State, tag="Trader.1"):
    preferences: TradingPreferences
    custom_plans: dict[str, ExitPlan]
    notifications: NotificationPreferences
    configured: bool


class TelegramLinksState(_State, tag="TelegramLinks.1"):
    codes: dict[str, tuple[str, datetime]]
    chats: dict[int, str]


# By the aggregate's class name, the first word of its snapshot shape ("Position/1:...").
STATES: dict[str, type[_State]] = {
    "SnipeTarget": SnipeTargetState,
    "Position": PositionState,
    "SafetySwitch": SafetySwitchState,
    "Listing": ListingState,
    "Trader": TraderState,
    "TelegramLinks": TelegramLinksState,
}

_encoder = msgspec.json.Encoder(decimal_format="string")
# One decoder for all: the tag is then required, and says which struct the JSON is.
_decoder = msgspec.json.Decoder(
    SnipeTargetState | PositionState | SafetySwitchState | ListingState | TraderState | TelegramLinksState
)


def _struct_of(shape: str) -> type[_State]:
    struct = STATES.get(shape.partition("/")[0])
    if struct is None:
        raise TypeError(f"no snapshot struct for the aggregate of shape {shape!r}")
    return struct


def encode_state(shape: str, state: dict[str, object]) -> str:
    """JSON text of the state of an aggregate of this shape (Aggregate.snapshot_shape); TypeError
    when the state's fields are not its struct's, or a value is not one it can carry exactly."""
    # The struct's own fields are the keywords; the state's are only known when this runs.
    struct: Callable[..., _State] = _struct_of(shape)
    snapshot = struct(**state)  # TypeError for a field missing or one too many
    for value in state.values():
        _check_exact(value, TypeError)
    return _encoder.encode(snapshot).decode()


def decode_state(shape: str, text: str | bytes) -> dict[str, object]:
    try:
        snapshot = _decoder.decode(text)
    except msgspec.DecodeError as exc:  # ValidationError is one: a type, field or tag that does not fit
        raise SnapshotUnreadable(str(exc)) from exc
    if type(snapshot) is not _struct_of(shape):
        raise SnapshotUnreadable(f"a {type(snapshot).__name__} is not the snapshot of {shape.partition('/')[0]}")
    state = {name: getattr(snapshot, name) for name in snapshot.__struct_fields__}
    for value in state.values():
        _check_exact(value, SnapshotUnreadable)
    return state


def read_snapshot(version: int, shape: str, state: str, wanted_shape: str) -> tuple[int, dict[str, object]] | None:
    """A stored snapshot as (version, state) if it is of the wanted shape and readable, else None."""
    if shape != wanted_shape:
        return None
    try:
        return version, decode_state(shape, state)
    except (SnapshotUnreadable, TypeError):
        return None


_LEAVES = {type(None), str, bool, int, datetime}


def _check_exact(value: object, error: type[Exception]) -> None:
    """msgspec reads "NaN" and "Infinity" as decimals and writes a float as a JSON number; neither
    is money. Walks the containers and dataclasses (their fields) of a state's value."""
    cls = type(value)
    if cls in _LEAVES:
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise error(f"not a finite decimal: {value!r}")
    elif isinstance(value, float):
        raise error(f"a snapshot carries money as Decimal, never as a float: {value!r}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_exact(item, error)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_exact(key, error)
            _check_exact(item, error)
    else:
        for name in getattr(cls, "__dataclass_fields__", ()):
            _check_exact(getattr(value, name), error)
