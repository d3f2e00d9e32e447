Feature: Trade history and queries
  Everything the sniper does is recorded as events. The queries read that history: one
  target's history (its events and its position's, in recorded order), a portfolio with
  realised and unrealised P&L, and the audit trail of every event in global order. Every
  aggregate rebuilt from its own events agrees with the trade book.

  Background: a morning of four listings; each scenario lets the worker play it in virtual time
    Given it is 2026-11-25 08:00 UTC
    And the calendar announces PUMP launching at 10:00
    And PUMP reaches the ready state at 09:30
    And PUMP trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.20  |
      | 120     | 1.50  |
      | 180     | 2.00  |
    And the calendar announces DUMP launching at 10:05
    And DUMP reaches the ready state at 09:40
    And DUMP trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 0.85  |
    And the calendar announces MOON launching at 10:07
    And MOON's symbol state is sts=2 st=1 tt=1 from 08:00
    And the calendar announces HOLD launching at 10:10
    And HOLD reaches the ready state at 09:50
    And HOLD trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.10  |
    And trader "alice" snipes 100 USDT per listing with the "balanced" exit plan
    And trader "bob" snipes 10.01 USDT per listing with the "conservative" exit plan
    And bob only snipes PUMP

  Scenario Outline: A target's history lists its events and its position's, in recorded order
    Given the worker has run until 11:00
    When the history of <user>'s target on <ticker> is requested
    Then the history is, in order: <events>
    And every event of the history belongs to <user> and carries the target id as correlation id
    And the history is in global order and holds every event of the target's and the position's streams

    Examples:
      | user  | ticker | events |
      | alice | PUMP   | SnipeTargetCreated, SnipeTargetReady, SnipeScheduled, SnipeOrderSubmitted, SnipeOrderFilled, PositionOpened, ExitOrderSubmitted, TakeProfitHit, ExitOrderSubmitted, TakeProfitHit, ExitOrderSubmitted, TakeProfitHit, PositionClosed |
      | bob   | PUMP   | SnipeTargetCreated, SnipeTargetReady, SnipeScheduled, SnipeOrderSubmitted, SnipeOrderFilled, PositionOpened, ExitOrderSubmitted, TakeProfitHit, ExitOrderSubmitted, TakeProfitHit, PositionClosed |
      | alice | DUMP   | SnipeTargetCreated, SnipeTargetReady, SnipeScheduled, SnipeOrderSubmitted, SnipeOrderFilled, PositionOpened, ExitOrderSubmitted, StopLossHit, PositionClosed |
      | alice | HOLD   | SnipeTargetCreated, SnipeTargetReady, SnipeScheduled, SnipeOrderSubmitted, SnipeOrderFilled, PositionOpened |
      | alice | MOON   | SnipeTargetCreated, SnipeExpired |

  Scenario Outline: The history of a target that does not exist is not found
    Given the worker has run until 11:00
    When the history of target "<target>" is requested
    Then the query fails with NotFound naming "<target>"

    Examples:
      | target          |
      | t-000000000000  |
      | bob on DUMP     |
      | carol on PUMP   |

  Scenario Outline: The portfolio's totals are the sums over its positions
    Given the worker has run until 11:00
    When the portfolio of <who> is requested
    Then the portfolio has <lines> lines
    And its realised P&L is <realised>, the sum of its positions' realised P&L
    And its realised P&L equals the sum of the recorded PositionClosed P&L of <who>
    And its unrealised P&L is <unrealised> and it invested <invested>

    Examples:
      | who      | lines | realised  | unrealised | invested   |
      | alice    | 4     | 32.7835   | 9.95       | 300.15     |
      | bob      | 1     | 1.990989  | 0          | 10.015005  |
      | everyone | 5     | 34.774489 | 9.95       | 310.165005 |

  Scenario: Every aggregate rebuilt from its own events agrees with the trade book
    Given the worker has run until 11:00
    When every snipe target and position is rebuilt from its stream
    Then each rebuilt aggregate has the status and P&L the trade book shows
    And they are:
      | user  | ticker | target  | position | realised P&L | held   |
      | alice | PUMP   | filled  | closed   | 47.876       | 0      |
      | alice | DUMP   | filled  | closed   | -15.0925     | 0      |
      | alice | MOON   | expired | -        | -            | -      |
      | alice | HOLD   | filled  | open     | 0            | 100.00 |
      | bob   | PUMP   | filled  | closed   | 1.990989     | 0      |

  Scenario: The audit trail lists every event once, in global order
    Given the worker has run until 11:00
    And ops activated and cleared the emergency stop for global
    When the audit trail is requested
    Then it lists every recorded event once, numbered 1 to the last position without a gap
    And it holds ListingAnnounced 4 times, SnipeTargetCreated 5 times and PositionOpened 4 times
    And the emergency stop's events come last
    When the audit trail of bob is requested
    Then it holds every event of bob, of the system and of the global stop, and nothing of alice
    When the audit trail after position 10 is requested, 5 at most
    Then it lists positions 11 to 15

  Scenario: The portfolio values an open position in a pair quoted in another asset
    Given the calendar announces CASH launching at 11:30
    And CASH is quoted in USDC
    And CASH reaches the ready state at 11:00
    And CASH trades at these prices after opening:
      | seconds | price |
      | 0       | 2.00  |
      | 60      | 2.30  |
    And trader "carol" snipes 20 USDC per listing in USDC
    And the worker has run until 11:45
    When the portfolio of carol is requested
    Then the portfolio has 1 lines
    And its realised P&L is 0, the sum of its positions' realised P&L
    And its unrealised P&L is 2.99 and it invested 20.01
