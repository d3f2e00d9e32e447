"""SnipeTarget: lifecycle, events in order, every invalid transition, rehydration."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import (
    RiskCheckFailed,
    SnipeExpired,
    SnipeFailed,
    SnipeOrderFilled,
    SnipeOrderRejected,
    SnipeOrderSubmitted,
    SnipeScheduled,
    SnipeTargetCancelled,
    SnipeTargetCreated,
    SnipeTargetReady,
)
from domain.exit_plans import PRESETS
from domain.listing import target_id_for
from domain.target import SnipeTarget, TargetStatus, snipe_client_order_id, target_stream
from domain.values import ClientOrderId, Symbol
from tests.domain.support import T0, cause, state_of, type_names

TARGET_ID = target_id_for("user-1", "coin-42")
LAUNCH = T0 + timedelta(hours=1)
PLAN = PRESETS["balanced"]


def create(**overrides: object) -> SnipeTarget:
    args: dict[str, object] = dict(
        target_id=TARGET_ID,
        user_id="user-1",
        coin_id="coin-42",
        symbol=Symbol("NEW", "USDT"),
        launch_at=LAUNCH,
        quote_amount=Decimal("25.5"),
        exit_plan=PLAN,
        confidence=Decimal("0.20"),
        live=False,
        cause=cause(0, "flow-create"),
    )
    args.update(overrides)
    return SnipeTarget.create(**args)  # type: ignore[arg-type]


# Steps from a new target to each state; each step is one command.
def _ready(t: SnipeTarget) -> None:
    t.mark_ready("ready", Decimal("0.95"), 3600, cause(10, "flow-ready"))


def _schedule(t: SnipeTarget) -> None:
    t.schedule(LAUNCH, LAUNCH + timedelta(seconds=30), cause(20, "flow-schedule"))


def _submit(t: SnipeTarget) -> None:
    t.submit_order(cause(3600, "flow-exec"))


def _fill(t: SnipeTarget) -> None:
    t.record_fill(
        "ex-1", Decimal("0.00009512"), Decimal("268080.73"), Decimal("25.4998390376"), Decimal("0.0255"), "USDT",
        3, Decimal("12.5"), cause(3601, "flow-exec"),
    )


def _fail(t: SnipeTarget) -> None:
    t.fail("window closed", cause(3700))


def _cancel(t: SnipeTarget) -> None:
    t.cancel("changed my mind", "user-1", cause(30))


def _expire(t: SnipeTarget) -> None:
    t.expire("launch passed unseen", cause(7200))


PATHS: dict[TargetStatus, list[Callable[[SnipeTarget], None]]] = {
    TargetStatus.WATCHING: [],
    TargetStatus.READY: [_ready],
    TargetStatus.SCHEDULED: [_ready, _schedule],
    TargetStatus.EXECUTING: [_ready, _schedule, _submit],
    TargetStatus.FILLED: [_ready, _schedule, _submit, _fill],
    TargetStatus.FAILED: [_ready, _schedule, _submit, _fail],
    TargetStatus.CANCELLED: [_cancel],
    TargetStatus.EXPIRED: [_expire],
}


def target_in(status: TargetStatus) -> SnipeTarget:
    t = create()
    for step in PATHS[status]:
        step(t)
    assert t.status is status
    return t


# Every command, and the states it may be given in (from DESIGN: watching → ready → scheduled
# → executing → filled | failed | cancelled | expired).
OPEN = {TargetStatus.WATCHING, TargetStatus.READY, TargetStatus.SCHEDULED}
COMMANDS: dict[str, tuple[Callable[[SnipeTarget], None], set[TargetStatus]]] = {
    "mark_ready": (_ready, {TargetStatus.WATCHING}),
    "schedule": (_schedule, {TargetStatus.READY}),
    "submit_order": (_submit, {TargetStatus.SCHEDULED}),
    "record_fill": (_fill, {TargetStatus.EXECUTING}),
    "record_rejection": (
        lambda t: t.record_rejection("30004", "insufficient balance", 1, cause(3601)), {TargetStatus.EXECUTING}
    ),
    "fail": (_fail, OPEN | {TargetStatus.EXECUTING}),
    "refuse_by_risk": (lambda t: t.refuse_by_risk(["too big"], cause(15)), OPEN),
    "expire": (_expire, OPEN),
    "cancel": (_cancel, OPEN),
}

MATRIX = [(status, name) for status in TargetStatus for name in COMMANDS]


class TestCreate:
    def test_records_created_in_watching(self) -> None:
        t = create()
        assert t.status is TargetStatus.WATCHING
        assert t.stream_id == target_stream(TARGET_ID) == f"target-{TARGET_ID}"
        assert t.user_id == "user-1"
        assert t.version == 1
        (rec,) = t.pending
        assert rec.user_id == "user-1"
        assert rec.correlation_id == "flow-create"
        assert rec.occurred_at == T0
        assert rec.event == SnipeTargetCreated(
            TARGET_ID, "coin-42", "NEWUSDT", LAUNCH, Decimal("25.5"), "USDT", PLAN, Decimal("0.20"), False
        )

    def test_state_after_create(self) -> None:
        t = create(symbol=Symbol("NEW", "USDC"), live=True)
        assert t.target_id == TARGET_ID
        assert t.coin_id == "coin-42"
        assert t.symbol == Symbol("NEW", "USDC")
        assert t.quote_asset == "USDC"
        assert t.quote_amount == Decimal("25.5")
        assert t.exit_plan is PLAN
        assert t.live is True
        assert t.client_order_id is None and t.fill is None and t.failure is None

    def test_string_amount_becomes_decimal(self) -> None:
        t = create(quote_amount="10.00")
        assert t.quote_amount == Decimal("10.00") and isinstance(t.quote_amount, Decimal)

    @pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-1"), 10.0])
    def test_amount_must_be_a_positive_decimal(self, amount: object) -> None:
        with pytest.raises(InvalidValue):
            create(quote_amount=amount)

    def test_needs_a_user(self) -> None:
        with pytest.raises(InvalidValue, match="user"):
            create(user_id="")

    @pytest.mark.parametrize("confidence", [Decimal("-0.01"), Decimal("1.01"), 0.5])
    def test_confidence_between_0_and_1(self, confidence: object) -> None:
        with pytest.raises(InvalidValue):
            create(confidence=confidence)

    @pytest.mark.parametrize("confidence", [Decimal("0"), Decimal("1")])
    def test_confidence_bounds_are_inclusive(self, confidence: Decimal) -> None:
        assert create(confidence=confidence).confidence == confidence


class TestLifecycle:
    def test_watching_to_filled_emits_each_event_in_order(self) -> None:
        t = create()
        _ready(t)
        assert t.status is TargetStatus.READY
        assert t.confidence == Decimal("0.95")
        _schedule(t)
        assert t.status is TargetStatus.SCHEDULED
        assert t.execute_at == LAUNCH and t.deadline_at == LAUNCH + timedelta(seconds=30)
        assert t.client_order_id == snipe_client_order_id(TARGET_ID).value
        _submit(t)
        assert t.status is TargetStatus.EXECUTING
        _fill(t)
        assert t.status is TargetStatus.FILLED
        assert t.status.is_final

        assert type_names(t.pending) == [
            "SnipeTargetCreated",
            "SnipeTargetReady",
            "SnipeScheduled",
            "SnipeOrderSubmitted",
            "SnipeOrderFilled",
        ]
        assert [r.version for r in t.pending] == [1, 2, 3, 4, 5]
        assert t.version == 5 and t.expected_version == 0
        assert [r.correlation_id for r in t.pending] == [
            "flow-create", "flow-ready", "flow-schedule", "flow-exec", "flow-exec",
        ]
        assert [r.occurred_at - T0 for r in t.pending] == [
            timedelta(0), timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=3600), timedelta(
                seconds=3601
            ),
        ]
        assert all(r.stream_id == t.stream_id and r.user_id == "user-1" for r in t.pending)

        coid = snipe_client_order_id(TARGET_ID).value
        events = [r.event for r in t.pending]
        assert events[1] == SnipeTargetReady(TARGET_ID, "ready", Decimal("0.95"), 3600)
        assert events[2] == SnipeScheduled(TARGET_ID, LAUNCH, LAUNCH + timedelta(seconds=30), coid)
        assert events[3] == SnipeOrderSubmitted(TARGET_ID, coid, "NEWUSDT", Decimal("25.5"))
        fill = SnipeOrderFilled(
            TARGET_ID, coid, "ex-1", Decimal("0.00009512"), Decimal("268080.73"), Decimal("25.4998390376"),
            Decimal("0.0255"), "USDT", 3, Decimal("12.5"),
        )
        assert events[4] == fill
        assert t.fill == fill

    @pytest.mark.parametrize("confidence", [Decimal("1.5"), Decimal("-0.1"), 0.9])
    def test_ready_confidence_obeys_the_same_rule_as_create(self, confidence: object) -> None:
        t = create()
        with pytest.raises(InvalidValue, match="confidence"):
            t.mark_ready("ready", confidence, 3600, cause(10))  # type: ignore[arg-type]
        assert t.status is TargetStatus.WATCHING and t.version == 1

    def test_schedule_needs_deadline_after_start(self) -> None:
        t = target_in(TargetStatus.READY)
        for deadline in (LAUNCH, LAUNCH - timedelta(seconds=1)):
            with pytest.raises(InvalidValue, match="deadline"):
                t.schedule(LAUNCH, deadline, cause(20))
        assert t.status is TargetStatus.READY and t.version == 2

    @pytest.mark.parametrize(
        ("price", "quantity", "spent", "fee"),
        [
            ("0", "1", "1", "0"), ("1", "0", "1", "0"), ("1", "1", "0", "0"), ("1", "1", "1", "-0.1"),
            ("-1", "1", "1", "0")
        ],
    )
    def test_fill_needs_positive_numbers(self, price: str, quantity: str, spent: str, fee: str) -> None:
        t = target_in(TargetStatus.EXECUTING)
        with pytest.raises(InvalidValue):
            t.record_fill(
                "ex", Decimal(price), Decimal(quantity), Decimal(spent), Decimal(fee), "USDT", 1, Decimal(1), cause(1)
            )
        assert t.status is TargetStatus.EXECUTING

    def test_zero_fee_fill_is_fine(self) -> None:
        t = target_in(TargetStatus.EXECUTING)
        t.record_fill("ex", Decimal("1"), Decimal("2"), Decimal("2"), Decimal("0"), "USDT", 1, Decimal(1), cause(1))
        assert t.status is TargetStatus.FILLED

    def test_rejection_records_rejected_then_failed(self) -> None:
        t = target_in(TargetStatus.EXECUTING)
        t.mark_saved()
        t.record_rejection("30004", "insufficient balance", 2, cause(3601, "flow-exec"))
        assert t.status is TargetStatus.FAILED
        assert type_names(t.pending) == ["SnipeOrderRejected", "SnipeFailed"]
        coid = snipe_client_order_id(TARGET_ID).value
        assert t.pending[0].event == SnipeOrderRejected(TARGET_ID, coid, "30004", "insufficient balance", 2)
        assert t.pending[1].event == SnipeFailed(TARGET_ID, "order rejected: insufficient balance")
        assert t.failure == "order rejected: insufficient balance"
        assert [r.version for r in t.pending] == [5, 6]

    @pytest.mark.parametrize("status", sorted(OPEN, key=lambda s: s.value))
    def test_refuse_by_risk_records_risk_check_failed_then_snipe_failed(self, status: TargetStatus) -> None:
        t = target_in(status)
        t.mark_saved()
        t.refuse_by_risk(
            ["quote amount 500 exceeds the per-snipe limit 100", "2 positions already open, limit 2"], cause(15)
        )
        assert type_names(t.pending) == ["RiskCheckFailed", "SnipeFailed"]
        assert t.pending[0].event == RiskCheckFailed(
            TARGET_ID, ("quote amount 500 exceeds the per-snipe limit 100", "2 positions already open, limit 2")
        )
        assert t.pending[1].event == SnipeFailed(
            TARGET_ID,
            "refused by risk limits: quote amount 500 exceeds the per-snipe limit 100; "
            "2 positions already open, limit 2",
        )
        assert t.status is TargetStatus.FAILED
        assert t.failure is not None and t.failure.startswith("refused by risk limits")

    def test_fail_while_executing(self) -> None:
        t = target_in(TargetStatus.EXECUTING)
        t.fail("snipe window closed", cause(3700))
        assert t.status is TargetStatus.FAILED
        assert t.pending[-1].event == SnipeFailed(TARGET_ID, "snipe window closed")

    def test_expire(self) -> None:
        t = target_in(TargetStatus.READY)
        t.expire("launch passed", cause(7200))
        assert t.status is TargetStatus.EXPIRED
        assert t.failure == "launch passed"
        assert t.pending[-1].event == SnipeExpired(TARGET_ID, "launch passed")

    def test_cancel(self) -> None:
        t = target_in(TargetStatus.SCHEDULED)
        t.cancel("emergency stop", "safety-monitor", cause(40))
        assert t.status is TargetStatus.CANCELLED
        assert t.failure == "emergency stop"
        assert t.pending[-1].event == SnipeTargetCancelled(TARGET_ID, "emergency stop", "safety-monitor")

    def test_final_states(self) -> None:
        final = {s for s in TargetStatus if s.is_final}
        assert final == {TargetStatus.FILLED, TargetStatus.FAILED, TargetStatus.CANCELLED, TargetStatus.EXPIRED}


class TestTransitionMatrix:
    @pytest.mark.parametrize(("status", "command"), MATRIX, ids=[f"{s.value}-{c}" for s, c in MATRIX])
    def test_each_command_in_each_state(self, status: TargetStatus, command: str) -> None:
        t = target_in(status)
        act, allowed = COMMANDS[command]
        before_version, before_pending = t.version, t.pending
        if status in allowed:
            act(t)
            assert t.version > before_version
        else:
            with pytest.raises(InvalidTransition) as info:
                act(t)
            assert info.value.current == status.value
            assert TARGET_ID in info.value.aggregate
            assert t.status is status
            assert t.version == before_version
            assert t.pending == before_pending

    def test_no_final_state_accepts_any_command(self) -> None:
        for _, allowed in COMMANDS.values():
            assert not any(s.is_final for s in allowed)

    def test_examples_from_the_brief(self) -> None:
        with pytest.raises(InvalidTransition, match="cannot be scheduled while watching"):
            _schedule(target_in(TargetStatus.WATCHING))
        t = target_in(TargetStatus.EXECUTING)
        with pytest.raises(InvalidTransition, match="cannot submit its order while executing"):
            _submit(t)
        with pytest.raises(InvalidTransition, match="cannot be cancelled while filled"):
            _cancel(target_in(TargetStatus.FILLED))


class TestClientOrderId:
    def test_deterministic_and_valid(self) -> None:
        a = snipe_client_order_id(TARGET_ID)
        assert a == snipe_client_order_id(TARGET_ID)
        assert isinstance(a, ClientOrderId)
        assert len(a.value) <= 32
        assert re.fullmatch(r"snp[0-9a-f]{24}", a.value)

    def test_distinct_per_target(self) -> None:
        ids = {snipe_client_order_id(target_id_for(f"user-{u}", f"coin-{c}")).value for u in range(5) for c in range(5)}
        assert len(ids) == 25

    def test_same_id_on_a_second_scheduling_of_an_identical_target(self) -> None:
        one, two = target_in(TargetStatus.SCHEDULED), target_in(TargetStatus.SCHEDULED)
        assert one.client_order_id == two.client_order_id == snipe_client_order_id(TARGET_ID).value


class TestRehydrate:
    @pytest.mark.parametrize("status", list(TargetStatus))
    def test_reproduces_state_and_version(self, status: TargetStatus) -> None:
        t = target_in(status)
        again = SnipeTarget.rehydrate(t.stream_id, t.pending)
        assert state_of(again) == state_of(t)
        assert again.status is status
        assert again.version == t.version
        assert again.user_id == "user-1"
        assert again.pending == []
        assert again.expected_version == t.version

    def test_rehydrated_target_carries_on(self) -> None:
        t = target_in(TargetStatus.SCHEDULED)
        again = SnipeTarget.rehydrate(t.stream_id, t.pending)
        again.submit_order(cause(3600))
        assert again.status is TargetStatus.EXECUTING
        (rec,) = again.pending
        assert rec.version == 4
        assert again.expected_version == 3
        assert rec.event == SnipeOrderSubmitted(
            TARGET_ID, snipe_client_order_id(TARGET_ID).value, "NEWUSDT", Decimal("25.5")
        )

    def test_rehydrated_target_refuses_a_second_submit(self) -> None:
        t = target_in(TargetStatus.EXECUTING)
        again = SnipeTarget.rehydrate(t.stream_id, t.pending)
        with pytest.raises(InvalidTransition):
            again.submit_order(cause(3600))
