"""With Redis on MEXC the deployment-wide polls are periodic jobs at fixed slots: intervals that
make no whole slots are refused at start, naming the variable to change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import ConfigurationError
from entrypoints.config import load_settings
from entrypoints.worker import _shared_poll_slots
from tests.conftest import REDIS_URL

BASE = {"SNIPER_MARKET": "mexc", "REDIS_URL": REDIS_URL}  # read, never reached


def test_the_defaults_make_slots() -> None:
    assert _shared_poll_slots(load_settings(BASE)) == {
        "calendar": timedelta(seconds=30),
        "pattern-discovery": timedelta(seconds=10),
        "reconciliation": timedelta(minutes=1),
    }


@pytest.mark.parametrize(("var", "value"), [
    ("SNIPER_STATE_POLL_SECONDS", "7"),
    ("SNIPER_STATE_POLL_SECONDS", "0.5"),
    ("SNIPER_CALENDAR_POLL_SECONDS", "45"),
    ("SNIPER_RECONCILE_POLL_SECONDS", "90"),
])
def test_an_interval_without_whole_slots_is_refused_by_name(var: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{var}={value}: .* must divide a minute"):
        _shared_poll_slots(load_settings(BASE | {var: value}))


@pytest.mark.parametrize(("var", "value", "every"), [
    ("SNIPER_STATE_POLL_SECONDS", "5", timedelta(seconds=5)),
    ("SNIPER_CALENDAR_POLL_SECONDS", "120", timedelta(minutes=2)),
    ("SNIPER_RECONCILE_POLL_SECONDS", "7200", timedelta(hours=2)),
])
def test_minutes_and_hours_that_divide_their_unit_are_slots(var: str, value: str, every: timedelta) -> None:
    assert every in _shared_poll_slots(load_settings(BASE | {var: value})).values()
