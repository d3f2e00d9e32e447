Feature: Risk limits before the snipe
  The risk manager checks a snipe against the trader's risk profile before anything is
  sent: the quote amount per snipe, the number of positions already open, and the loss
  today could come to: what was realised, what the open positions would lose at their
  stop-losses, and what this snipe would lose at its own stop-loss, fees both ways. A
  refused snipe records RiskCheckFailed (with the reasons) and SnipeFailed, and no order
  reaches the exchange.

  Background:
    Given it is 2026-11-25 08:00 UTC
    And the calendar announced NEW at 08:45, launching at 10:00
    And NEW reaches the ready state at 09:30
    # The "balanced" plan's stop-loss is 10 %: a 20 USDT snipe could lose 2 + 0.01 + 0.009 in fees.
    And trader "alice" snipes 20 USDT per listing
    And alice's risk limits are:
      | max quote per snipe      | 100 |
      | max concurrent positions | 2   |
      | max daily loss           | 5   |
      | max total exposure       | 300 |

  Scenario: A snipe within every limit goes ahead
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And no RiskCheckFailed was recorded
    And the exchange received 1 buy for NEW

  Scenario: A quote amount above the per-snipe limit is refused
    Given alice snipes 150 USDT per listing
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "quote amount 150 exceeds the per-snipe limit 100"
    And no buy was sent for NEW
    And alice holds no position in NEW

  Scenario: A trader already holding the maximum of open positions is refused
    Given alice already holds 2 open positions
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "2 positions already open, limit 2"
    And no buy was sent for NEW
    And alice holds no position in NEW

  Scenario: One position fewer than the maximum is still allowed
    Given alice already holds 1 open position
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And no RiskCheckFailed was recorded

  Scenario: A trader whose realised loss today reached the daily limit is refused
    Given alice's exit plan is "conservative"
    And alice snipes 50 USDT per listing
    # The price gaps through the 5 % stop-loss: the sell fills at 0.8.
    And alice closed a position at a loss of 10.045 USDT today
    And alice snipes 20 USDT per listing
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "has reached the daily limit 5"
    And no buy was sent for NEW
    And alice holds no position in NEW

  Scenario: The snipe about to be made counts at its stop-loss, fees both ways
    Given alice closed a position at a loss of 4.018 USDT today
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "today's loss 4.018 + open positions at their stop-losses 0 + this snipe at its 10% stop-loss, fees both ways, 2.019 = 6.037 would exceed the daily loss limit 5"
    And no buy was sent for NEW

  Scenario: Open positions count at what they would still lose at their stop-losses
    Given alice already holds 1 open position
    And alice snipes 30 USDT per listing
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "today's loss 0 + open positions at their stop-losses 2.019 + this snipe at its 10% stop-loss, fees both ways, 3.0285 = 5.0475 would exceed the daily loss limit 5"
    And no buy was sent for NEW

  Scenario: Another trader's loss does not count against this one
    Given trader "bob" snipes 50 USDT per listing
    And bob closed a position at a loss of 10.045 USDT today
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And no RiskCheckFailed was recorded

  Scenario: A live snipe is refused once the trader has turned live trading off
    Given alice trades live
    And alice's snipe of NEW was scheduled at 09:30
    And alice has turned live trading off
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW was refused by the risk limits because "live trading is not enabled for this user"
    And no buy was sent for NEW

  Scenario Outline: Every unmet limit is named in the refusal
    # Two open positions of 20 could lose 4.038 at their stop-losses: any snipe breaks the daily loss limit too.
    Given alice already holds 2 open positions
    And alice snipes <amount> USDT per listing
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then RiskCheckFailed names <count> reasons

    Examples:
      | amount | count |
      | 20     | 2     |
      | 150    | 3     |
