Feature: Calendar sync
  The calendar agent polls MEXC's new-coin calendar, records each listing new to us once
  (ListingAnnounced), and creates a snipe target for every user with auto-snipe on whose
  filters want the listing. A listing that has already launched is too late to snipe.

  Background:
    Given it is 2026-11-25 08:00 UTC

  Scenario: A new listing is recorded once, however often the calendar is synced
    Given the calendar announces NEW launching at 10:00
    And trader "alice" snipes 50 USDT per listing
    When the calendar is synced
    Then ListingAnnounced is recorded once for NEW, launching at 10:00
    And alice has 1 snipe target for NEW
    When the calendar is synced again
    Then the sync recorded nothing new
    And ListingAnnounced is recorded once for NEW, launching at 10:00
    And alice has 1 snipe target for NEW

  Scenario: A listing is recorded even when no trader wants it
    Given the calendar announces NEW launching at 10:00
    When the calendar is synced
    Then ListingAnnounced is recorded once for NEW, launching at 10:00
    And no snipe target was created

  Scenario: A listing announced later is picked up by a later sync
    Given the calendar announces NEW launching at 10:00
    And the calendar announced LATE at 08:30, launching at 11:00
    And trader "alice" snipes 50 USDT per listing
    When the calendar is synced
    Then the sync recorded ListingAnnounced for NEW only
    When the calendar is synced at 08:30
    Then the sync recorded ListingAnnounced for LATE only
    And alice has 1 snipe target for LATE

  Scenario: Targets follow each trader's auto-snipe switch and ticker filters
    Given the calendar announces NEW launching at 10:00
    And these traders:
      | user  | auto-snipe | quote amount | exit plan    | only tickers | skip tickers |
      | alice | on         | 50           | balanced     |              |              |
      | bob   | on         | 10.01        | conservative | PUMP         |              |
      | carol | on         | 20           | balanced     |              | NEW          |
      | dave  | off        | 20           | balanced     |              |              |
      | erin  | on         | 30           | scalping     | NEW, PUMP    | DUMP         |
    When the calendar is synced
    Then snipe targets were created for alice and erin only
    And each new target is watching NEW with its trader's quote amount and exit plan:
      | user  | quote amount | exit plan | launch at |
      | alice | 50           | balanced  | 10:00     |
      | erin  | 30           | scalping  | 10:00     |

  Scenario Outline: One trader's filters decide whether a target is created
    Given the calendar announces <ticker> launching at 10:00
    And these traders:
      | user  | auto-snipe   | quote amount | exit plan | only tickers | skip tickers |
      | alice | <auto-snipe> | 25           | balanced  | <only>       | <skip>       |
    When the calendar is synced
    Then alice has <count> snipe target for <ticker>

    Examples:
      | ticker | auto-snipe | only      | skip | count |
      | NEW    | on         |           |      | 1     |
      | NEW    | on         | NEW       |      | 1     |
      | NEW    | on         | PUMP      |      | 0     |
      | NEW    | on         |           | NEW  | 0     |
      | NEW    | on         | NEW       | NEW  | 0     |
      | NEW    | off        |           |      | 0     |
      | PUMP   | on         | NEW, PUMP | DUMP | 1     |

  Scenario: A listing quoted in another asset than the trader's gets no target
    Given the calendar announces NEW launching at 10:00
    And NEW is quoted in USDC
    And trader "alice" snipes 50 USDT per listing
    When the calendar is synced
    Then ListingAnnounced is recorded once for NEW, launching at 10:00
    And alice has 0 snipe target for NEW

  Scenario: A trader who turns auto-snipe on later gets a target on the next sync
    Given the calendar announces NEW launching at 10:00
    And trader "alice" snipes 50 USDT per listing
    And the calendar has been synced
    And trader "bob" snipes 10 USDT per listing
    When the calendar is synced again
    Then the sync recorded SnipeTargetCreated for bob only
    And ListingAnnounced is recorded once for NEW, launching at 10:00

  Scenario Outline: A listing that has already launched is recorded but not sniped
    Given the calendar announced OLD at 06:00, launching at <launch>
    And trader "alice" snipes 50 USDT per listing
    When the calendar is synced
    Then ListingAnnounced is recorded once for OLD, launching at <launch>
    And no snipe target was created

    Examples:
      | launch |
      | 07:00  |
      | 08:00  |
