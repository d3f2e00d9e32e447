Feature: Emergency stop
  A person (or the safety monitor) can halt trading for one user or for everyone
  ('global'). While the stop is active no new order is sent: a scheduled snipe fails
  without an order and exits are held. Only a person clears it, and trading resumes.
  The stop is a button: pressing it again while it holds records nothing and says since when
  it has held; clearing a stop that is not active records nothing and says there was none.
  A stop the safety monitor trips by itself (daily loss, price collapse, error burst) fires
  when a loss is running: it holds snipes and take-profits, but stop-losses and trailing
  stops keep selling. A person's stop holds every exit.

  Background:
    Given it is 2026-11-25 09:30 UTC
    And the calendar announces NEW launching at 10:00
    And NEW reaches the ready state at 09:30
    And NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 0.85  |
      | 120     | 0.84  |
    And trader "alice" snipes 100 USDT per listing with the "balanced" exit plan

  Scenario Outline: An active emergency stop fails a scheduled snipe without an order
    Given alice's snipe of NEW was scheduled at 09:30
    When <person> activates the emergency stop for <scope> because "<reason>"
    And alice's snipe of NEW runs at its scheduled time
    Then EmergencyStopActivated was recorded for <scope> by <person> because "<reason>"
    And alice's snipe of NEW failed because "<halt>"
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated |
      | SnipeTargetReady   |
      | SnipeScheduled     |
      | SnipeFailed        |
    And no buy was sent for NEW
    And alice holds no position in NEW

    Examples:
      | scope  | person | reason              | halt                                       |
      | alice  | alice  | I saw a rug pull    | emergency stop: I saw a rug pull           |
      | global | ops    | exchange incident   | global emergency stop: exchange incident   |

  Scenario: Activating the stop cancels the orders still open on the exchange
    Given the exchange holds the open orders lmt-1, lmt-2 on NEW
    When ops activates the emergency stop for global because "exchange incident"
    Then the open orders lmt-1, lmt-2 were cancelled
    And the exchange holds no open order

  Scenario: A stop for another user leaves this user's snipe alone
    Given trader "bob" snipes 10 USDT per listing
    And alice's snipe of NEW was scheduled at 09:30
    When bob activates the emergency stop for bob because "holiday"
    And alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW is filled
    And the exchange holds exactly one buy order for NEW

  Scenario: A stop pressed in the last second before launch stops the snipe before the send
    Given alice's snipe of NEW was scheduled at 09:30
    When alice's snipe of NEW runs at its scheduled time while ops activates the global emergency stop at 09:59:59
    Then alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated  |
      | SnipeTargetReady    |
      | SnipeScheduled      |
      | SnipeOrderSubmitted |
      | SnipeFailed         |
    And alice's snipe of NEW failed because "global emergency stop"
    # The stop is read for the last time 300 ms before launch: no database read near the launch instant
    # (the bracket's first send leaves a little before it).
    And SnipeFailed was recorded at 09:59:59.70, after EmergencyStopActivated at 09:59:59
    And no buy was sent for NEW

  Scenario: Clearing the stop records EmergencyStopCleared and snipes go ahead again
    Given alice's snipe of NEW was scheduled at 09:30
    When ops activates the emergency stop for global because "exchange incident"
    And ops clears the emergency stop for global
    And alice's snipe of NEW runs at its scheduled time
    Then EmergencyStopCleared was recorded for global by ops
    And alice's snipe of NEW is filled
    And the exchange holds exactly one buy order for NEW

  Scenario: The emergency stop holds exits until it is cleared
    Given alice's snipe of NEW has filled
    When alice activates the emergency stop for alice because "hold everything"
    And NEW's price ticks arrive until 10:01:30
    Then alice's position in NEW is still open with no exit order
    When alice clears the emergency stop for alice
    And NEW's price ticks arrive until 10:02:30
    Then EmergencyStopCleared was recorded for alice by alice
    And alice's position in NEW was closed by StopLossHit at 0.84

  Scenario: A stop tripped by the safety monitor holds the take-profit but lets the stop-loss sell
    Given NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.25  |
      | 120     | 0.85  |
    And alice's snipe of NEW has filled
    When the safety monitor trips the emergency stop for alice because "daily loss limit reached"
    And NEW's price ticks arrive until 10:01:30
    Then alice's position in NEW is still open with no exit order
    When NEW's price ticks arrive until 10:02:30
    Then alice's position in NEW was closed by StopLossHit at 0.85
    And the emergency stop for alice is still active, tripped automatically by the safety monitor

  Scenario: A stop the safety monitor recorded before stops said "automatic" still lets the stop-loss sell
    Given NEW trades at these prices after opening:
      | seconds | price |
      | 0       | 1.00  |
      | 60      | 1.25  |
      | 120     | 0.85  |
    And alice's snipe of NEW has filled
    And the safety monitor tripped the emergency stop for alice before stops recorded "automatic"
    When NEW's price ticks arrive until 10:01:30
    Then alice's position in NEW is still open with no exit order
    When NEW's price ticks arrive until 10:02:30
    Then alice's position in NEW was closed by StopLossHit at 0.85

  Scenario: A person taking over the safety monitor's stop holds the stop-loss too
    Given alice's snipe of NEW has filled
    When the safety monitor trips the emergency stop for alice because "price collapse"
    And alice activates the emergency stop for alice because "hold everything"
    And NEW's price ticks arrive until 10:02:30
    Then alice's position in NEW is still open with no exit order

  Scenario Outline: Clearing a stop that is not active says there was none and records nothing
    Given <history>
    When ops clears the emergency stop for <scope> again
    Then the answer is that no emergency stop for <scope> was active
    And nothing was recorded

    Examples:
      | scope  | history                                                  |
      | alice  | no emergency stop was ever activated                     |
      | global | no emergency stop was ever activated                     |
      | global | ops activated and cleared the emergency stop for global  |
      | alice  | ops activated the emergency stop for global              |

  Scenario Outline: Pressing a stop that is already active says since when and records nothing
    Given <first> activated the emergency stop for <scope>
    And it is 09:45 UTC
    When <second> presses the emergency stop for <scope> again because "still bad"
    Then the answer is that the emergency stop for <scope> has been active since 09:30 because "drill"
    And nothing was recorded
    And the emergency stop for <scope> still holds everything

    Examples:
      | scope  | first | second |
      | global | ops   | ops    |
      | alice  | alice | alice  |
      | alice  | ops   | alice  |

  Scenario: A second press is no error, and the stop it finds still stops the snipe
    Given alice's snipe of NEW was scheduled at 09:30
    When alice activates the emergency stop for alice because "I saw a rug pull"
    And alice presses the emergency stop for alice again because "really"
    And alice's snipe of NEW runs at its scheduled time
    Then alice's snipe of NEW failed because "emergency stop: I saw a rug pull"
    And no buy was sent for NEW
