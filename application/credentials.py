"""A user's MEXC API credentials: stored sealed, shown only as a hint, opened only to sign.

The vault keeps them encrypted at rest (adapters/credentials/); nothing here logs them, and
the API only ever sees a CredentialSummary. Storing, replacing and deleting them is recorded
in the trade history (CredentialsStored / CredentialsRotated / CredentialsDeleted, in the
stream `credentials-{user_id}`) with the hint and the key version only.

A change of the vault and the event that records it are one unit: the use cases hand the vault
a CredentialsRecord, and the vault writes its row and appends the event together, or neither
(the SQL vault in one database transaction with the event store on the same database; the
memory vault appends first and then sets its row, which cannot fail). So the history never
misses a change, and never claims one that did not happen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from application.errors import ConcurrencyConflict, InvalidInput, NotFound
from application.ports import Clock, EventStore
from domain.events import CredentialsDeleted, CredentialsRotated, CredentialsStored, DomainEvent, Recorded

_T = TypeVar("_T")

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


def credentials_stream(user_id: str) -> str:
    return f"credentials-{user_id}"


@dataclass(frozen=True, slots=True)
class CredentialsRecord:
    """How a vault change is recorded: `event(before, after)` gives the event for what the
    user's row was and is now (None: no row), or None to record nothing; it is appended to
    `credentials-{user_id}` in `store` at `at`, as one unit with the change."""

    store: EventStore
    at: datetime
    event: Callable[[CredentialSummary | None, CredentialSummary | None], DomainEvent | None]

    def recorded(self, user_id: str, version: int, event: DomainEvent) -> Recorded:
        stream = credentials_stream(user_id)
        return Recorded(stream, version, self.at, user_id, stream, event)


async def append_before_change(
    record: CredentialsRecord, user_id: str, before: CredentialSummary | None, after: CredentialSummary | None
) -> None:
    """For a vault that shares no transaction with the store (in memory): append the event,
    then the vault makes its change, which cannot fail. A failed append leaves both as they were."""
    event = record.event(before, after)
    if event is None:
        return
    version = len(await record.store.load(credentials_stream(user_id))) + 1
    await record.store.append([record.recorded(user_id, version, event)])


class CredentialVault(Protocol):
    """Per-user credentials, encrypted at rest under a versioned key.

    With a `record`, `put` and `delete` append the event it makes of the change as one unit with
    the change: if the event cannot be appended (ConcurrencyConflict, the store's error) the
    vault is left as it was and the error raised. Without one they change the vault only (tools
    and tests)."""

    async def put(
        self, user_id: str, credentials: ApiCredentials, at: datetime, record: CredentialsRecord | None = None
    ) -> CredentialSummary:
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

    async def delete(self, user_id: str, record: CredentialsRecord | None = None) -> bool:
        """Forget the user's credentials; False if there were none (and nothing is recorded)."""
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


async def _retrying_clashes(attempts: int, change: Callable[[], Awaitable[_T]]) -> _T:
    """Two changes racing on one user both get recorded: on a version clash of the
    credentials stream (nothing changed then), the change is made again, up to `attempts` times."""
    attempt = 1
    while True:
        try:
            return await change()
        except ConcurrencyConflict:
            if attempt >= attempts:
                raise
            attempt += 1


def _stored_or_rotated(before: CredentialSummary | None, after: CredentialSummary | None) -> DomainEvent | None:
    if after is None:  # pragma: no cover - a put always leaves a row
        return None
    kind = CredentialsRotated if before is not None else CredentialsStored
    return kind(key_version=after.key_version, api_key_hint=after.api_key_hint)


def _deleted(before: CredentialSummary | None, after: CredentialSummary | None) -> DomainEvent | None:
    if before is None:
        return None
    return CredentialsDeleted(key_version=before.key_version, api_key_hint=before.api_key_hint)


class StoreCredentials:
    """Store or replace a user's credentials and record it (CredentialsStored the first time,
    CredentialsRotated when replacing) with the key hint and key version only, as one unit
    (see the module docstring): if the event cannot be appended, the vault keeps what it had."""

    def __init__(self, vault: CredentialVault, store: EventStore, clock: Clock, attempts: int = 3) -> None:
        self.vault, self.store, self.clock, self.attempts = vault, store, clock, attempts

    async def __call__(self, user_id: str, credentials: ApiCredentials) -> CredentialSummary:
        if not user_id:
            raise InvalidInput("user_id", "required")
        validate_credentials(credentials)
        now = self.clock.now()
        record = CredentialsRecord(self.store, now, _stored_or_rotated)
        return await _retrying_clashes(self.attempts, lambda: self.vault.put(user_id, credentials, now, record))


class DeleteCredentials:
    """Forget a user's credentials. True if there were some, and then CredentialsDeleted is
    recorded (key version and hint of the deleted ones) as one unit with the delete; nothing
    is recorded otherwise. If the event cannot be appended, the keys stay and the error is raised."""

    def __init__(self, vault: CredentialVault, store: EventStore, clock: Clock, attempts: int = 3) -> None:
        self.vault, self.store, self.clock, self.attempts = vault, store, clock, attempts

    async def __call__(self, user_id: str) -> bool:
        record = CredentialsRecord(self.store, self.clock.now(), _deleted)
        return await _retrying_clashes(self.attempts, lambda: self.vault.delete(user_id, record))


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
