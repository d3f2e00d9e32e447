"""The many-traders benchmark's harness keeps working: one launch, three traders with their own keys,
the fake exchange in its own process enforcing the per-IP and per-key budgets. No timing is asserted."""

from __future__ import annotations

import pytest

from bench import many


def test_every_trader_buys_once_with_its_own_key_and_nothing_is_rate_limited() -> None:
    [result] = many.run(traders=3, rounds=1, lead=3.0)

    assert result.accepted == 3 and dict(result.results) == {"filled": 3}
    assert result.orders["accepted"] == 3  # one buy each, nothing bought twice
    assert len(result.per_trader) == 3  # each trader's orders came with its own key
    assert not result.too_many
    assert len(result.first_sends_us) == 3 and result.first_sends_us[0] == 0
    assert "bought" in many.round_line(0, result)


def test_two_launches_inside_one_window_draw_no_429_from_the_calls_after_the_fills() -> None:
    """The 50-trader bench's second round drew 429s (then a 418) on the fee lookups after the fills
    (myTrades, weight 10, one per trader): scaled down, 30 traders on two launches a few seconds apart
    put 600 weight in one 10 s window where MEXC (and the fake) allows 500 per IP. Every call draws
    from the IP's budget: the second launch's last lookups wait for the first's to leave the window.
    A fill is not held back for them (issue 14): recorded at once, with its fee when there was budget
    for the lookup then, else without it and the fee learnt right after; every fee is known when the
    snipes end (fees_unknown counts those that are not)."""
    rounds = many.run(traders=30, rounds=2, lead=3.0)

    for result in rounds:
        assert result.accepted == 30 and dict(result.results) == {"filled": 30}
        assert result.orders["accepted"] == 30
        assert not result.too_many
        assert result.fees_unknown == 0


@pytest.mark.redis
def test_traders_split_across_two_worker_processes_share_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    [result] = many.run(traders=4, rounds=1, lead=5.0, workers=2)

    assert result.accepted == 4 and dict(result.results) == {"filled": 4}
    assert result.orders["accepted"] == 4  # one buy each, across the two processes
    assert len(result.per_trader) == 4 and not result.too_many
    assert len(result.first_sends_us) == 4
