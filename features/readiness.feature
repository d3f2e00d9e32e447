Feature: Ready-state detection
  The pattern agent polls the symbol states of watched listings. A listing seen in the
  ready-state pattern (sts=2, st=2, tt=4) while its launch is inside the lead window
  (3.5 h) is ready: its targets become ready, and each target confident enough for its
  trader is scheduled durably at launch time. A target still not scheduled well after
  its launch (launch + 5 min of grace) expires.

  Background:
    Given it is 2026-11-25 08:00 UTC
    And the calendar announces NEW launching at 10:00
    And trader "alice" snipes 50 USDT per listing

  Scenario: A ready state inside the lead window schedules the snipe at launch
    Given NEW reaches the ready state at 08:30
    And the calendar has been synced
    When the symbol states are polled at 08:30
    Then ListingReadyDetected is recorded once for NEW with sts=2 st=2 tt=4 and 5400 s of lead
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated |
      | SnipeTargetReady   |
      | SnipeScheduled     |
    And alice's snipe of NEW is ready with pattern "ready" and confidence 0.95
    And SnipeTargetReady for alice's NEW was seen 5400 s ahead of launch
    And alice's snipe of NEW is scheduled
    And SnipeScheduled for alice's NEW executes at 10:00:00 with the deadline 10:00:30 and its own client order id
    And the scheduler holds one execute_snipe job for alice's NEW at 09:59:58

  Scenario: Every trader's target on the listing is scheduled, each as its own job
    Given trader "bob" snipes 10 USDT per listing
    And NEW reaches the ready state at 09:00
    And the calendar has been synced
    When the symbol states are polled at 09:00
    Then alice's snipe of NEW is scheduled
    And bob's snipe of NEW is scheduled
    And the scheduler holds one execute_snipe job for alice's NEW at 09:59:58
    And the scheduler holds one execute_snipe job for bob's NEW at 09:59:58
    And ListingReadyDetected is recorded once for NEW with sts=2 st=2 tt=4 and 3600 s of lead

  Scenario: A second poll records nothing new
    Given NEW reaches the ready state at 09:00
    And the calendar has been synced
    And the symbol states were polled at 09:00
    When the symbol states are polled at 09:00:10
    Then nothing was recorded
    And the scheduler holds one execute_snipe job for alice's NEW at 09:59:58

  Scenario: A trader who joins after the listing was seen ready is scheduled on the next poll
    Given NEW reaches the ready state at 09:00
    And the calendar has been synced
    And the symbol states were polled at 09:00
    And trader "bob" snipes 10 USDT per listing
    And the calendar was synced again at 09:05
    When the symbol states are polled at 09:05:10
    Then bob's snipe of NEW is scheduled
    And the poll recorded SnipeTargetReady, SnipeScheduled
    And ListingReadyDetected is recorded once for NEW with sts=2 st=2 tt=4 and 3600 s of lead
    And the scheduler holds one execute_snipe job for bob's NEW at 09:59:58

  Scenario Outline: A state that is not the ready-state pattern schedules nothing
    Given NEW's symbol state is sts=<sts> st=<st> tt=<tt> from 08:00
    And the calendar has been synced
    When the symbol states are polled at 09:00
    Then nothing was recorded
    And alice's snipe of NEW is watching
    And the scheduler holds no job

    Examples:
      | sts | st | tt |
      | 1   | 1  | 1  |
      | 2   | 1  | 1  |
      | 2   | 2  | 1  |
      | 2   | 1  | 4  |
      | 1   | 2  | 4  |
      | 2   | 2  | 3  |

  Scenario Outline: Only a launch inside the lead window makes the listing ready
    Given the calendar announces FAR launching at 12:00
    And FAR reaches the ready state at 08:00
    And the calendar has been synced
    When the symbol states are polled at <poll>
    Then alice's snipe of FAR is <status>

    Examples: the lead window is 3.5 h, both ends included
      | poll     | status    |
      | 08:00    | watching  |
      | 08:29:59 | watching  |
      | 08:30    | scheduled |
      | 11:59    | scheduled |
      | 12:00    | scheduled |
      | 12:00:01 | watching  |

  Scenario Outline: A target below the trader's confidence is ready but not scheduled
    Given alice wants a confidence of at least <min confidence>
    And NEW reaches the ready state at 08:00
    And the calendar has been synced
    When the symbol states are polled at <poll>
    Then alice's snipe of NEW is ready with pattern "ready" and confidence <confidence>
    And alice's snipe of NEW is <status>
    And the scheduler holds <jobs> job

    Examples: seen ready 5 min or more ahead is worth 0.95, later 0.85
      | min confidence | poll     | confidence | status    | jobs |
      | 0.80           | 09:55    | 0.95       | scheduled | one  |
      | 0.80           | 09:57    | 0.85       | scheduled | one  |
      | 0.90           | 09:57    | 0.85       | ready     | no   |
      | 0.95           | 09:00    | 0.95       | scheduled | one  |
      | 0.96           | 09:00    | 0.95       | ready     | no   |

  Scenario Outline: A target still watching after launch plus the grace period expires
    Given NEW's symbol state is sts=2 st=2 tt=1 from 08:00
    And the calendar has been synced
    When the symbol states are polled at <poll>
    Then alice's snipe of NEW is <status>
    And the poll recorded <recorded>

    Examples: the grace period is 5 min
      | poll     | status   | recorded    |
      | 10:00:01 | watching | nothing     |
      | 10:04:59 | watching | nothing     |
      | 10:05    | expired  | SnipeExpired |

  Scenario: A ready state seen only after launch comes too late
    Given NEW reaches the ready state at 10:01
    And the calendar has been synced
    When the symbol states are polled at 10:01
    Then nothing was recorded
    And alice's snipe of NEW is watching
    When the symbol states are polled at 10:05
    Then alice's snipe of NEW is expired
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated |
      | SnipeExpired       |
    And the snipe expired because "never reached the ready state before launch"

  Scenario: A ready target that was never confident enough expires too
    Given alice wants a confidence of at least 0.99
    And NEW reaches the ready state at 09:00
    And the calendar has been synced
    And the symbol states were polled at 09:00
    When the symbol states are polled at 10:05
    Then alice's snipe of NEW is expired
    And alice's snipe of NEW recorded, in order:
      | SnipeTargetCreated |
      | SnipeTargetReady   |
      | SnipeExpired       |
    And the snipe expired because "ready but not confident enough"
    And the scheduler holds no job
