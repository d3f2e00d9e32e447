"""A user's MEXC API credentials: stored sealed, shown only as a hint, opened only to sign.

The vault keeps them encrypted at rest (adapters/credentials/); nothing here logs them, and
the API only ever sees a CredentialSummary. Storing, replacing and deleting them is recorded
in the trade history (CredentialsStored / CredentialsRotated / CredentialsDeleted, in the
stream `credentials-{user_id}`) with the hint and the key version only.

Order: the vault changes first, the record follows (the history states only what happened).
If the record then cannot be appended, the error is logged (user and event type, nothing
secret) and raised to the caller, so the trader sees the request fail although the vault
did change: GET /credentials shows the truth, and a repeated PUT records a rotation. The
other order could leave a record of a deletion whose keys are still in the vault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from application.errors import ConcurrencyConflict, InvalidInput, NotFound
from application.ports import Clock, EventStore
from domain.events import CredentialsDeleted, CredentialsRotated, CredentialsStored, DomainEvent, Recorded

_log = logging.getLogger(__name__)

API_KEY_LENGTHS = (8, 256)
SECRET_KEY_LENGTHS = (8, 512)


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    """An exchange API key and its secret. Neither shows up in repr() or str()."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CredentialSummary:
    """What may be shown about stored credentials: a hint of the API key, never the secret."""

    user_id: str
    api_key_hint: str
    key_version: int
    stored_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CredentialCheckResult:
    """The outcome of a read-only check against the exchange. `detail` is safe to show."""

    ok: bool
    can_trade: bool
    detail: str


class CredentialVault(Protocol):
    """Per-user credentials, encrypted at rest under a versioned key."""

    async def put(self, user_id: str, credentials: ApiCredentials, at: datetime) -> CredentialSummary:
        """Store (or replace) the user's credentials, sealed under the current key."""
        ...

    async def summary(self, user_id: str) -> CredentialSummary | None:
        """What may be shown about the user's credentials, without opening them; None if none."""
        ...

    async def reveal(self, user_id: str) -> ApiCredentials | None:
        """The user's credentials in clear, None if none.

        Only the exchange adapter that signs requests for this user (orders, and the read-only
        credential check) may call this; never log, return or keep the result.
        """
        ...

    async def delete(self, user_id: str) -> bool:
        """Forget the user's credentials; False if there were none."""
        ...


class CredentialChecker(Protocol):
    """Tries credentials against the exchange with read-only calls only (never an order)."""

    async def check(self, credentials: ApiCredentials) -> CredentialCheckResult: ...


def api_key_hint(api_key: str) -> str:
    """First and last few characters of the API key: at most 4 of each, and never more than
    half of the key, so a short key is not shown whole."""
    shown = min(4, len(api_key) // 4)
    if shown == 0:
        return "…"
    return f"{api_key[:shown]}…{api_key[-shown:]}"


def _check_field(name: str, value: object, lengths: tuple[int, int]) -> None:
    low, high = lengths
    if not isinstance(value, str) or not value:
        raise InvalidInput(name, "required")
    if not low <= len(value) <= high:
        raise InvalidInput(name, f"must be {low} to {high} characters long")
    if any(ch.isspace() for ch in value):
        raise InvalidInput(name, "must not contain whitespace")
    if not all(ch.isascii() and ch.isprintable() for ch in value):
        raise InvalidInput(name, "must be printable ASCII")


def validate_credentials(credentials: ApiCredentials) -> None:
    """Raise InvalidInput (naming the field, never echoing the value) unless both parts are
    non-empty printable ASCII without whitespace, of a sane length."""
    _check_field("api_key", credentials.api_key, API_KEY_LENGTHS)
    _check_field("secret_key", credentials.secret_key, SECRET_KEY_LENGTHS)


def credentials_stream(user_id: str) -> str:
    return f"credentials-{user_id}"


async def record_credentials_event(
    store: EventStore, user_id: str, event: DomainEvent, at: datetime, attempts: int = 3
) -> Recorded:
    """Append `event` to the user's credentials stream, after whatever is there: two changes
    racing on one user both get recorded (on a version clash, reload and append after the
    other, up to `attempts` times). Called once the vault has changed, so a failure is logged
    as a vault/history mismatch before it is raised; it is never swallowed."""
    stream = credentials_stream(user_id)
    attempt = 1
    try:
        while True:
            version = len(await store.load(stream)) + 1
            try:
                return (await store.append([Recorded(stream, version, at, user_id, stream, event)]))[0]
            except ConcurrencyConflict:
                if attempt >= attempts:
                    raise
                attempt += 1
    except Exception as exc:
        _log.error("credentials of user %s changed in the vault but %s was not recorded: %s",
                   user_id, event.type_name, type(exc).__name__)
        raise


class StoreCredentials:
    """Store or replace a user's credentials and record it (CredentialsStored the first time,
    CredentialsRotated when replacing) with the key hint and key version only.

    The vault is written first, then the event appended (see the module docstring): if the
    append fails, the new credentials are in place but unrecorded and the error is raised."""

    def __init__(self, vault: CredentialVault, store: EventStore, clock: Clock, attempts: int = 3) -> None:
        self.vault, self.store, self.clock, self.attempts = vault, store, clock, attempts

    async def __call__(self, user_id: str, credentials: ApiCredentials) -> CredentialSummary:
        if not user_id:
            raise InvalidInput("user_id", "required")
        validate_credentials(credentials)
        now = self.clock.now()
        replacing = await self.vault.summary(user_id) is not None
        summary = await self.vault.put(user_id, credentials, now)
        event: DomainEvent
        if replacing:
            event = CredentialsRotated(key_version=summary.key_version, api_key_hint=summary.api_key_hint)
        else:
            event = CredentialsStored(key_version=summary.key_version, api_key_hint=summary.api_key_hint)
        await record_credentials_event(self.store, user_id, event, now, self.attempts)
        return summary


class DeleteCredentials:
    """Forget a user's credentials. True if there were some, and then CredentialsDeleted is
    recorded (key version and hint of the deleted ones); nothing is recorded otherwise.

    The vault deletes first, and only a successful delete is recorded (with the clash retry
    of StoreCredentials), so the history never claims keys are gone that are still held. If
    the append fails the keys are gone anyway and the error is raised; a repeated DELETE then
    answers False (nothing left to delete) and records nothing."""

    def __init__(self, vault: CredentialVault, store: EventStore, clock: Clock, attempts: int = 3) -> None:
        self.vault, self.store, self.clock, self.attempts = vault, store, clock, attempts

    async def __call__(self, user_id: str) -> bool:
        before = await self.vault.summary(user_id)
        if not await self.vault.delete(user_id):
            return False
        # `before` is None only if a store raced in between the two calls: the deleted keys
        # are then unknown here, and the event says so with version 0 and an empty hint.
        event = CredentialsDeleted(
            key_version=before.key_version if before else 0, api_key_hint=before.api_key_hint if before else ""
        )
        await record_credentials_event(self.store, user_id, event, self.clock.now(), self.attempts)
        return True


class GetCredentialSummary:
    """What may be shown about a user's stored credentials, or None."""

    def __init__(self, vault: CredentialVault) -> None:
        self.vault = vault

    async def __call__(self, user_id: str) -> CredentialSummary | None:
        return await self.vault.summary(user_id)


class TestCredentials:
    """Check credentials against the exchange with read-only calls: the given ones (before
    storing them) or, without any, the user's stored ones (NotFound if none)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, vault: CredentialVault, checker: CredentialChecker) -> None:
        self.vault, self.checker = vault, checker

    async def __call__(self, user_id: str, credentials: ApiCredentials | None = None) -> CredentialCheckResult:
        if credentials is None:
            credentials = await self.vault.reveal(user_id)
            if credentials is None:
                raise NotFound(f"no stored credentials for user {user_id}")
        else:
            validate_credentials(credentials)
        return await self.checker.check(credentials)
