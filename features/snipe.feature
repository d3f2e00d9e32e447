Feature: Executing a snipe
  At launch the executor sends the timed market buy (quoteOrderQty) with a client order id
  derived from the target. "Not yet open" replies are retried in a tight loop until the
  snipe deadline (launch + 30 s); an unclear reply is resolved by querying the client order
  id before any resend (a landed order may answer "not found" for a moment, so it is looked
  for through a grace first); a final refusal fails fast. An emergency stop pressed while the
  loop retries stops it. One target, at most one buy, even with two workers or a restart in
  between: the executor holds the snipe's lease, renewed, for as long as it waits or retries.

  Background:
    Given it is 2026-11-25 09:30 UTC
    And the calendar announces NEW launching at 10:00
    And NEW reaches the ready state at 09:30
    And NEW trades at 0.00009512 from its opening
    And NEW quantities have 0 decimal places
    And trader "alice" snipes 10.01 USDT per listing

  Scenario: "Not yet open" replies are retried until the pair opens, then the buy fills
    Given NEW opens 45 ms after its launch
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated  |
      | SnipeTargetReady    |
      | SnipeScheduled      |
      | SnipeOrderSubmitted |
      | SnipeOrderFilled    |
    And SnipeOrderSubmitted was recorded at 09:59:58, before the first buy was sent
    And the buy filled after 4 attempts at 10:00:00.060, 60 ms after launch
    And the exchange received 4 buys for NEW, every one with the client order id of SnipeScheduled
    And the exchange holds exactly one buy order for NEW
    And alice holds an open position in NEW from that fill

  Scenario Outline: The fill is recorded in exact decimals
    Given NEW quantities have <scale> decimal places
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then SnipeOrderFilled records price 0.00009512, quantity <quantity>, quote spent <spent> and fee <fee> USDT
    And PositionOpened records entry price 0.00009512, quantity <quantity> and cost <cost>

    Examples: quantity = floor(10.01 / 0.00009512) at the listing's scale, spent = quantity x price, fee = spent x 0.0005
      | scale | quantity        | spent              | fee                   | cost                     |
      | 0     | 105235          | 10.0099532         | 0.0050049766          | 10.0149581766            |
      | 2     | 105235.49       | 10.0099998088      | 0.0050049999044       | 10.0150048087044         |
      | 8     | 105235.49201009 | 10.0099999999997608 | 0.0050049999999998804 | 10.0150049999997606804  |

  Scenario: A pair that never opens within the snipe window fails without an order
    Given NEW opens 31 s after its launch
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW failed because "no fill by the deadline after 1500 attempts"
    And SnipeFailed was recorded at 10:00:30
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated  |
      | SnipeTargetReady    |
      | SnipeScheduled      |
      | SnipeOrderSubmitted |
      | SnipeFailed         |
    And the exchange received 1500 buys for NEW, every one with the client order id of SnipeScheduled
    And the exchange holds no buy order for NEW
    And alice holds no position in NEW

  Scenario: An executor that only runs after the snipe window has closed sends nothing
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs late, at 10:00:30
    Then alice's snipe of NEW failed because "snipe window closed before the executor ran"
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated |
      | SnipeTargetReady   |
      | SnipeScheduled     |
      | SnipeFailed        |
    And no buy was sent for NEW

  Scenario Outline: A pair opening late but inside the window is still bought
    Given NEW opens <delay> s after its launch
    And alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is <status>
    And the exchange holds <orders> buy order for NEW

    Examples:
      | delay | status | orders |
      | 1     | filled | one    |
      | 29    | filled | one    |
      | 30    | failed | no     |

  Scenario Outline: An unclear or throttled reply never leads to a second order
    Given alice's snipe of NEW was scheduled at 09:30
    And the exchange answers the next order call with <fault>
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And the exchange received, in order: <calls>
    And the exchange holds exactly one buy order for NEW
    And the buy filled after <attempts> attempts, at <filled at>

    Examples: a rate limit asks for 100 ms of patience
      | fault                 | calls                     | attempts | filled at    |
      | TIMEOUT_AFTER_ACCEPT  | prepare, buy, query       | 1        | 10:00:00     |
      | RATE_LIMITED          | prepare, buy, buy         | 2        | 10:00:00.100 |

  Scenario: A buy lost on the way is looked for through the resend grace before it is sent again
    Given alice's snipe of NEW was scheduled at 09:30
    And the exchange answers the next order call with TIMEOUT_BEFORE_ACCEPT
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    # Queried 0, 20, 60, 140, 300, 620, 1120 ms after the lost send, then every 500 ms to 9620, and at 10 s:
    # the whole visibility grace, since a resend of a landed order would be a second buy.
    And between the two buys the exchange was asked 25 times for the order by its client order id
    And the buy filled after 2 attempts, at 10:00:10
    And the exchange holds exactly one buy order for NEW

  Scenario: A final refusal such as insufficient balance fails fast
    Given alice's snipe of NEW was scheduled at 09:30
    And the exchange answers the next order call with INSUFFICIENT_BALANCE
    When alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated  |
      | SnipeTargetReady    |
      | SnipeScheduled      |
      | SnipeOrderSubmitted |
      | SnipeOrderRejected  |
      | SnipeFailed         |
    And SnipeOrderRejected says code 10101, "insufficient balance", after 1 attempt
    And alice's snipe of NEW failed because "order rejected: insufficient balance"
    And SnipeFailed was recorded at 10:00:00
    And the exchange received, in order: prepare, buy
    And the exchange holds no buy order for NEW
    And alice holds no position in NEW

  Scenario: Running the same snipe again places no second order
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time
    And alice's snipe of NEW runs again
    Then the second run was skipped because "target is filled"
    And the exchange holds exactly one buy order for NEW
    And the exchange received, in order: prepare, buy
    And SnipeOrderFilled and PositionOpened are each recorded once

  Scenario: Two workers running the same snipe side by side place one order
    Given NEW opens 45 ms after its launch
    And alice's snipe of NEW was scheduled at 09:30
    When two workers run alice's snipe of NEW together at its scheduled time
    Then one worker filled the snipe and the other skipped it
    And alice's snipe of NEW is filled
    And the exchange holds exactly one buy order for NEW
    And SnipeOrderFilled and PositionOpened are each recorded once

  Scenario: A second worker arriving after the lease's ttl finds it renewed and places no second order
    Given snipe leases last 1 s
    And alice's snipe of NEW was scheduled at 09:30
    When a second worker takes alice's snipe of NEW over at 09:59:59.500 while the first waits for launch
    Then one worker filled the snipe and the other skipped it
    # It tries the held lease again for one ttl: the first worker, alive, keeps it until it is done.
    And the second worker skipped it because "target is filled"
    And alice's snipe of NEW is filled
    And the exchange holds exactly one buy order for NEW
    And SnipeOrderFilled and PositionOpened are each recorded once
    And no SnipeFailed was recorded

  Scenario: An emergency stop pressed while the pair still answers "not yet open" stops the retries
    Given NEW opens 10 s after its launch
    And alice's snipe of NEW was scheduled at 09:30
    When ops activates the global emergency stop at 10:00:02 while alice's snipe of NEW is retrying
    Then alice's snipe of NEW failed because "global emergency stop"
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated  |
      | SnipeTargetReady    |
      | SnipeScheduled      |
      | SnipeOrderSubmitted |
      | SnipeFailed         |
    # Read again between resends at most every 200 ms, never before the first send.
    And SnipeFailed was recorded less than 250 ms after EmergencyStopActivated
    And the exchange holds no buy order for NEW
    And alice holds no position in NEW

  Scenario: A worker that died during the send is resent only after its buy had time to show
    # The restarted worker cannot tell whether the dead one's buy landed, and a landed order may
    # answer "not found" for a moment: it looks for the order through the 10 s visibility grace,
    # from the last moment the dead worker could have sent, before it sends the buy again.
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time but the worker dies before the buy reaches the exchange
    Then alice's snipe of NEW is executing
    And the exchange holds no buy order for NEW
    When a restarted worker runs alice's snipe of NEW at 10:00:05
    Then alice's snipe of NEW is filled
    And the restarted worker asked the exchange for the order until it sent: prepare, buy
    And the buy filled after 1 attempts, at 10:00:15
    And the exchange holds one buy order for NEW

  Scenario Outline: A worker that dies during the send is resumed without a second order
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time but the worker dies <when>
    Then alice's snipe of NEW is executing
    And the exchange holds <orders before> buy order for NEW
    When a restarted worker runs alice's snipe of NEW at <restart>
    Then alice's snipe of NEW is <status>
    And the restarted worker asked the exchange, in order: <calls>
    And the exchange holds <orders after> buy order for NEW

    Examples:
      | when                                | orders before | restart  | status | calls        | orders after |
      | after the exchange accepted the buy | one           | 10:00:05 | filled | query        | one          |
      | after the exchange accepted the buy | one           | 10:05    | filled | query        | one          |
      | before the buy reaches the exchange | no            | 10:05    | failed | query, query | no           |
