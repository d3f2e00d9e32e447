"""A trader's notification settings: which kinds of news reach them, how loudly, and on which
channels. Part of the trader (domain/trader.py), recorded as NotificationSettingsChanged.

Kinds are the moments money moves or may move; each is on, off or silent (delivered without a
sound where the channel can, e.g. Telegram's disable_notification). Channel secrets (a webhook
URL that is itself a credential, an HMAC secret, an SMTP password) arrive here already sealed:
the domain checks shapes, never sees a secret in the clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidValue


class NotificationKind(StrEnum):
    TARGET_CREATED = "target_created"
    SNIPE_SCHEDULED = "snipe_scheduled"
    SNIPE_FILLED = "snipe_filled"
    SNIPE_FAILED = "snipe_failed"  # failed, rejected, refused by the risk check, or expired
    EXIT = "exit"  # each part of a position sold (take-profit, stop-loss, trailing, max hold, emergency, dust)
    POSITION_CLOSED = "position_closed"
    EMERGENCY_STOP = "emergency_stop"  # activated and cleared
    DAILY_SUMMARY = "daily_summary"


class NotificationMode(StrEnum):
    ON = "on"
    OFF = "off"
    SILENT = "silent"


class ChannelKind(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    SLACK = "slack"
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class NotificationChannel:
    """One channel of a trader. `address`: the Telegram chat id, the e-mail address, or the
    webhook's URL (not secret); `secret`: sealed text (the Discord or Slack webhook URL, the
    webhook's HMAC secret, an SMTP URL with its password), never plain."""

    kind: str
    enabled: bool = True
    address: str = ""
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationPreferences:
    modes: tuple[tuple[str, str], ...] = ()  # (kind, mode); a kind not listed is on
    channels: tuple[NotificationChannel, ...] = ()
    daily_summary_at: str | None = None  # "HH:MM" (UTC); None: no daily summary

    def mode(self, kind: NotificationKind) -> NotificationMode:
        found = dict(self.modes).get(kind.value)
        if found is None:
            return NotificationMode.OFF if kind is NotificationKind.DAILY_SUMMARY and not self.daily_summary_at \
                else NotificationMode.ON
        return NotificationMode(found)

    def channel(self, kind: ChannelKind | str) -> NotificationChannel | None:
        name = kind.value if isinstance(kind, ChannelKind) else kind
        return next((c for c in self.channels if c.kind == name), None)

    def active_channels(self) -> tuple[NotificationChannel, ...]:
        return tuple(c for c in self.channels if c.enabled)


DEFAULT_NOTIFICATIONS = NotificationPreferences()

_CHAT_RE = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$|^[^@\s]{1,64}@localhost$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_ADDRESS = 500


def checked_preferences(wanted: NotificationPreferences) -> NotificationPreferences:
    """`wanted`, checked: known kinds and modes, one channel of each kind, addresses that fit
    their channel. Raises InvalidValue naming the first wrong value."""
    modes: dict[str, str] = {}
    for kind, mode in wanted.modes:
        try:
            modes[NotificationKind(kind).value] = NotificationMode(mode).value
        except ValueError:
            raise InvalidValue(
                f"notification {kind!r}: kind must be one of {', '.join(k.value for k in NotificationKind)} "
                f"and mode one of on, off, silent; got {mode!r}"
            ) from None
    seen: set[str] = set()
    channels = []
    for channel in wanted.channels:
        try:
            kind = ChannelKind(channel.kind)
        except ValueError:
            raise InvalidValue(
                f"channel must be one of {', '.join(k.value for k in ChannelKind)}, got {channel.kind!r}"
            ) from None
        if kind.value in seen:
            raise InvalidValue(f"channel {kind.value} given twice")
        seen.add(kind.value)
        address = channel.address.strip()
        if len(address) > MAX_ADDRESS:
            raise InvalidValue(f"{kind.value} address: at most {MAX_ADDRESS} characters")
        if kind is ChannelKind.TELEGRAM and not _CHAT_RE.fullmatch(address):
            raise InvalidValue(
                f"telegram address must be a chat id (digits, may start with -) or @channel, got {address!r}")
        if kind is ChannelKind.EMAIL and not _EMAIL_RE.fullmatch(address):
            raise InvalidValue(f"email address is not an e-mail address: {address!r}")
        if kind is ChannelKind.WEBHOOK and not address.startswith(("https://", "http://")):
            raise InvalidValue("webhook address must be an http(s):// URL")
        if kind in (ChannelKind.DISCORD, ChannelKind.SLACK) and not channel.secret:
            raise InvalidValue(f"{kind.value} needs its webhook URL")
        channels.append(NotificationChannel(kind.value, bool(channel.enabled), address, channel.secret or None))
    at = wanted.daily_summary_at
    if at is not None and not _TIME_RE.fullmatch(at):
        raise InvalidValue(f"daily summary time must be HH:MM (UTC, 00:00-23:59), got {at!r}")
    return NotificationPreferences(tuple(sorted(modes.items())), tuple(channels), at)
