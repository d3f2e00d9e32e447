"""Errors of the domain. Each names a broken rule; the edge translates them."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken."""


class InvalidValue(DomainError, ValueError):
    """A value object was given something it cannot hold."""


class InvalidTransition(DomainError):
    """An aggregate was asked to move to a state it cannot reach from where it is."""

    def __init__(self, aggregate: str, current: str, action: str) -> None:
        super().__init__(f"{aggregate} cannot {action} while {current}")
        self.aggregate = aggregate
        self.current = current
        self.action = action


class RiskLimitExceeded(DomainError):
    """A pre-trade check refused the trade."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class EmergencyStopActive(DomainError):
    """Trading is halted until a person clears the emergency stop."""


class SnipeWindowClosed(DomainError):
    """The snipe deadline passed before the exchange accepted the buy."""


class UnknownExitStrategy(DomainError):
    """No preset or user-defined exit strategy has that name."""
