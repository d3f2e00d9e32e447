"""TelegramLinks: which Telegram chat acts for which user, and the one-time codes that link them.

One stream for the deployment (`telegram-links`): the bot must find a chat's user, and a code's
user, without knowing the user first. A code is kept by its SHA-256 only; it links one chat,
once, before it expires. Redeeming it is a recorded event appended at the stream's version, so
two chats racing with the same code cannot both win (the store's optimistic concurrency).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from domain.aggregate import Aggregate
from domain.errors import DomainError, InvalidValue
from domain.events import Cause, DomainEvent, TelegramChatLinked, TelegramChatUnlinked, TelegramLinkCodeIssued

TELEGRAM_LINKS_STREAM = "telegram-links"
# How long a code may wait to be sent to the bot.
LINK_CODE_TTL = timedelta(minutes=10)
# Letters and digits nobody confuses on a phone (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


class LinkCodeRefused(DomainError):
    """The code is unknown, used already, or expired (one message for all three: a guesser learns nothing)."""


def code_hash(code: str) -> str:
    """How a code is kept and looked up: the SHA-256 of its normalised text."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


class TelegramLinks(Aggregate):
    """`codes`: code hash -> (user id, expiry) of the codes not used yet (expired ones are dropped
    when a newer code is issued); `chats`: chat id -> user id of the linked chats."""

    kind = "telegram links"

    def _blank(self) -> None:
        self.codes: dict[str, tuple[str, datetime]] = {}
        self.chats: dict[int, str] = {}

    @classmethod
    def new(cls) -> TelegramLinks:
        links = cls(TELEGRAM_LINKS_STREAM, "system")
        links._blank()
        return links

    def user_of(self, chat_id: int) -> str | None:
        return self.chats.get(chat_id)

    def chats_of(self, user_id: str) -> list[int]:
        return sorted(chat for chat, user in self.chats.items() if user == user_id)

    def issue(self, user_id: str, hashed: str, cause: Cause) -> datetime:
        """Record a new code of the user (their earlier unused one stops counting); its expiry."""
        if not user_id:
            raise InvalidValue("a link code needs a user")
        expires = cause.at + LINK_CODE_TTL
        self._record_for(user_id, TelegramLinkCodeIssued(user_id, hashed, expires), cause)
        return expires

    def link(self, chat_id: int, hashed: str, cause: Cause) -> str:
        """Link the chat to the code's user; the user. Raises LinkCodeRefused for a code that is
        unknown, used or expired. A chat linked to someone else before is theirs no more."""
        pending = self.codes.get(hashed)
        if pending is None or pending[1] <= cause.at:
            raise LinkCodeRefused("that code is unknown, used already or expired: ask for a new one")
        user_id = pending[0]
        self._record_for(user_id, TelegramChatLinked(user_id, chat_id, hashed), cause)
        return user_id

    def unlink(self, user_id: str, reason: str, cause: Cause) -> list[int]:
        """Unlink every chat of the user; the chats unlinked (none: nothing recorded)."""
        chats = self.chats_of(user_id)
        for chat in chats:
            self._record_for(user_id, TelegramChatUnlinked(user_id, chat, reason), cause)
        return chats

    def _record_for(self, user_id: str, event: DomainEvent, cause: Cause) -> None:
        # The stream is the deployment's; each event is recorded as its user's (their audit trail).
        self.user_id = user_id
        self._record(event, cause)

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case TelegramLinkCodeIssued():
                issued_at = event.expires_at - LINK_CODE_TTL
                self.codes = {
                    h: (user, expires) for h, (user, expires) in self.codes.items()
                    if user != event.user_id and expires > issued_at
                }
                self.codes[event.code_hash] = (event.user_id, event.expires_at)
            case TelegramChatLinked():
                self.codes.pop(event.code_hash, None)
                self.chats[event.chat_id] = event.user_id
            case TelegramChatUnlinked():
                if self.chats.get(event.chat_id) == event.user_id:
                    del self.chats[event.chat_id]
            case _:
                raise TypeError(f"telegram links cannot apply {type(event).__name__}")
