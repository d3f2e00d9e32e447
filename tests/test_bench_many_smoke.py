"""The many-traders benchmark's harness keeps working: one launch, three traders with their own keys,
the fake exchange in its own process enforcing the per-IP and per-key budgets. No timing is asserted."""

from __future__ import annotations

from bench import many


def test_every_trader_buys_once_with_its_own_key_and_nothing_is_rate_limited() -> None:
    [result] = many.run(traders=3, rounds=1, lead=3.0)

    assert result.accepted == 3 and dict(result.results) == {"filled": 3}
    assert result.orders["accepted"] == 3  # one buy each, nothing bought twice
    assert len(result.per_trader) == 3  # each trader's orders came with its own key
    assert not result.too_many
    assert len(result.first_sends_us) == 3 and result.first_sends_us[0] == 0
    assert "bought" in many.round_line(0, result)
