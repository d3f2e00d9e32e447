Feature: Exits by plan
  A filled snipe opens a position with its trader's exit plan. The position manager
  follows the price ticks and sells by the plan: the take-profit ladder level by level,
  the stop-loss for everything left, a trailing stop after a peak, and a maximum hold
  time. Stop-loss is decided first when several rules hold on the same tick. Realised
  P&L is exact: proceeds minus exit fees minus the cost released (entry fee included).

  Background:
    Given it is 2026-11-25 09:30 UTC
    And the calendar announces NEW launching at 10:00
    And NEW reaches the ready state at 09:30
    And trader "alice" snipes 100 USDT per listing

  Scenario: The take-profit ladder fires level by level and closes the position
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.10  |
      | 120     | 1.20  |
      | 180     | 1.35  |
      | 240     | 1.50  |
      | 300     | 2.00  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:01:30
    Then alice's position in NEW is still open with no exit order
    When NEW's price ticks arrive until 10:02:30
    Then alice's position in NEW is partially exited, holding 60.00, with realised P&L 7.956
    When NEW's price ticks arrive until 10:10
    Then the exits of alice's position in NEW are:
      | exit          | level | quantity | price | proceeds | fee   | realised P&L |
      | TakeProfitHit | 0     | 40.00    | 1.20  | 48.00    | 0.024 | 7.956        |
      | TakeProfitHit | 1     | 40.00    | 1.50  | 60.00    | 0.03  | 19.95        |
      | TakeProfitHit | 2     | 20.00    | 2.00  | 40.00    | 0.02  | 19.97        |
    And alice's position in NEW is closed with realised P&L 47.876
    And PositionClosed records cost 100.05, proceeds 148.00, fees 0.124 and realised P&L 47.876
    And the exchange received sells of NEW: 40.00, 40.00, 20.00

  Scenario: A tick above two levels sells both levels on that tick
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.60  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:05
    Then the exits of alice's position in NEW are:
      | exit          | level | quantity | price | proceeds | fee   | realised P&L |
      | TakeProfitHit | 0     | 40.00    | 1.60  | 64.00    | 0.032 | 23.948       |
      | TakeProfitHit | 1     | 40.00    | 1.60  | 64.00    | 0.032 | 23.948       |
    And alice's position in NEW is partially exited, holding 20.00, with realised P&L 47.896

  Scenario: The stop-loss sells everything
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 0.95  |
      | 120     | 0.90  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:05
    Then the exits of alice's position in NEW are:
      | exit        | level | quantity | price | proceeds | fee   | realised P&L |
      | StopLossHit | -     | 100.00   | 0.90  | 90.00    | 0.045 | -10.095      |
    And alice's position in NEW is closed with realised P&L -10.095
    And the exchange received sells of NEW: 100.00

  Scenario: After a partial take-profit, the stop-loss sells what is left
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.20  |
      | 120     | 0.85  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:05
    Then the exits of alice's position in NEW are:
      | exit          | level | quantity | price | proceeds | fee    | realised P&L |
      | TakeProfitHit | 0     | 40.00    | 1.20  | 48.00    | 0.024  | 7.956        |
      | StopLossHit   | -     | 60.00    | 0.85  | 51.00    | 0.0255 | -9.0555      |
    And alice's position in NEW is closed with realised P&L -1.0995

  Scenario Outline: Stop-loss wins when several exit rules hold on the same tick
    Given alice defines the exit plan "tight":
      | take profit   | +50% | sell 100% |
      | stop loss     | 10%  |           |
      | trailing stop | 5%   |           |
      | max hold      | 600 s |          |
    And alice's exit plan is "tight"
    And NEW trades at these prices after opening:
      | seconds | price   |
      | 0       | 1.00    |
      | 60      | 1.05    |
      | 700     | <price> |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:15
    Then the exits of alice's position in NEW are:
      | exit   | level | quantity | price   | proceeds   | fee   | realised P&L |
      | <exit> | -     | 100.00   | <price> | <proceeds> | <fee> | <pnl>        |

    Examples: at 700 s the position is past its 600 s hold; the trailing stop sits at 0.9975
      | price | rules that hold                       | exit               | proceeds | fee    | pnl      |
      | 0.90  | stop-loss, trailing stop, max hold    | StopLossHit        | 90.00    | 0.045  | -10.095  |
      | 0.95  | trailing stop, max hold               | TrailingStopHit    | 95.00    | 0.0475 | -5.0975  |
      | 1.02  | max hold                              | MaxHoldTimeReached | 102.00   | 0.051  | 1.899    |

  Scenario: A trailing stop sells everything after a peak
    Given alice's exit plan is "aggressive"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.30  |
      | 120     | 1.10  |
      | 180     | 1.04  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:02:30
    Then alice's position in NEW is still open with no exit order
    And PositionPeakRaised was recorded at 1.30
    When NEW's price ticks arrive until 10:05
    Then the exits of alice's position in NEW are:
      | exit            | level | quantity | price | proceeds | fee   | realised P&L |
      | TrailingStopHit | -     | 100.00   | 1.04  | 104.00   | 0.052 | 3.898        |
    And alice's position in NEW is closed with realised P&L 3.898

  Scenario: The maximum hold time of the "scalping" plan closes the position
    Given alice's exit plan is "scalping"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 300     | 1.01  |
      | 899     | 1.02  |
      | 900     | 1.02  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:14:59
    Then alice's position in NEW is still open with no exit order
    When NEW's price ticks arrive until 10:15
    Then the exits of alice's position in NEW are:
      | exit               | level | quantity | price | proceeds | fee   | realised P&L |
      | MaxHoldTimeReached | -     | 100.00   | 1.02  | 102.00   | 0.051 | 1.899        |
    And alice's position in NEW is closed with realised P&L 1.899

  Scenario: A trader's own exit plan is followed like a preset
    Given alice defines the exit plan "moonshot":
      | take profit | +30% | sell 50% |
      | take profit | +60% | sell 50% |
      | stop loss   | 8%   |          |
    And alice's exit plan is "moonshot"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.30  |
      | 120     | 1.60  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:05
    Then the position of alice in NEW follows the exit plan "moonshot"
    And the exits of alice's position in NEW are:
      | exit          | level | quantity | price | proceeds | fee    | realised P&L |
      | TakeProfitHit | 0     | 50.00    | 1.30  | 65.00    | 0.0325 | 14.9425      |
      | TakeProfitHit | 1     | 50.00    | 1.60  | 80.00    | 0.04   | 29.935       |
    And alice's position in NEW is closed with realised P&L 44.8775

  Scenario Outline: A custom plan with a preset's levels exits exactly like the preset
    Given alice defines the exit plan "my-conservative":
      | take profit | +10% | sell 50% |
      | take profit | +20% | sell 50% |
      | stop loss   | 5%   |          |
    And alice's exit plan is "<plan>"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.10  |
      | 120     | 1.20  |
    And alice's snipe of NEW has filled
    When NEW's price ticks arrive until 10:05
    Then the position of alice in NEW follows the exit plan "<plan>"
    And the exits of alice's position in NEW are:
      | exit          | level | quantity | price | proceeds | fee    | realised P&L |
      | TakeProfitHit | 0     | 50.00    | 1.10  | 55.00    | 0.0275 | 4.9475       |
      | TakeProfitHit | 1     | 50.00    | 1.20  | 60.00    | 0.03   | 9.945        |
    And alice's position in NEW is closed with realised P&L 14.8925

    Examples:
      | plan            |
      | conservative    |
      | my-conservative |

  Scenario Outline: An exit order whose reply goes wrong never sells the same shares twice
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 0.90  |
      | 120     | 0.89  |
    And alice's snipe of NEW has filled
    And the exchange answers the next order call with <fault>
    When NEW's price ticks arrive until 10:05
    Then the exits of alice's position in NEW are:
      | exit        | level | quantity | price   | proceeds   | fee   | realised P&L |
      | StopLossHit | -     | 100.00   | <price> | <proceeds> | <fee> | <pnl>        |
    And ExitOrderFailed was recorded <failed> times
    And the exchange received sells of NEW: <sells>
    And the exchange holds exactly one sell order for NEW
    And alice's position in NEW is closed with realised P&L <pnl>

    Examples: a sell that did not happen is tried again on the next tick (0.89)
      | fault                 | failed | sells          | price | proceeds | fee    | pnl      |
      | TIMEOUT_AFTER_ACCEPT  | 0      | 100.00         | 0.90  | 90.00    | 0.045  | -10.095  |
      | TIMEOUT_BEFORE_ACCEPT | 1      | 100.00, 100.00 | 0.89  | 89.00    | 0.0445 | -11.0945 |
      | RATE_LIMITED          | 1      | 100.00, 100.00 | 0.89  | 89.00    | 0.0445 | -11.0945 |
      | INSUFFICIENT_BALANCE  | 1      | 100.00, 100.00 | 0.89  | 89.00    | 0.0445 | -11.0945 |

  Scenario: A price tick moves only the positions in its own pair
    Given alice's exit plan is "balanced"
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 0.80  |
    And the calendar announces CALM launching at 10:00
    And CALM reaches the ready state at 09:30
    And CALM trades at 1.00 from its opening
    And alice's snipe of NEW has filled
    And alice's snipe of CALM has filled
    When NEW's price ticks arrive until 10:05
    Then alice's position in NEW is closed with realised P&L -20.09
    And alice's position in CALM is still open with no exit order

  Scenario Outline: A plan outside the bounds a trader may set is refused, naming the bound
    When alice saves the exit plan "wild" with take-profits "<ladder>" and a stop-loss of <stop>%
    Then the exit plan is refused because "<reason>"
    And nothing was recorded

    Examples:
      | ladder                                                                                    | stop | reason                                    |
      | +10% sell 10%, +20% sell 10%, +30% sell 10%, +40% sell 10%, +50% sell 10%, +60% sell 10%, +70% sell 10% | 10   | 7 take-profit levels; give 1 to 5         |
      | +1001% sell 100%                                                                          | 10   | take-profit gain 1001% is outside 0.5-1000% |
      | +0.05% sell 100%                                                                          | 10   | take-profit gain 0.05% is outside 0.5-1000% |
      | +10% sell 0.5%, +20% sell 99.5%                                                           | 10   | take-profit share 0.5% is outside 1-100%  |
      | none                                                                                      | 10   | 0 take-profit levels; give 1 to 5         |
      | +10% sell 100%                                                                            | 96   | stop-loss 96% is outside 0.5-95%          |

  Scenario: A plan at the edges of the bounds is saved
    When alice saves the exit plan "edges" with take-profits "+0.5% sell 1%, +1000% sell 99%" and a stop-loss of 95%
    Then alice's exit plan "edges" is saved
