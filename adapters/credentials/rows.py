"""One user's credentials as both vaults store them: sealed, with the hint and key version."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.security.sealing import KeyRing, Sealed
from application.credentials import ApiCredentials, CredentialSummary, api_key_hint

API_KEY_FIELD = "api_key"
SECRET_KEY_FIELD = "secret_key"  # noqa: S105 - a field's name, not a secret


@dataclass(frozen=True, slots=True)
class CredentialRow:
    user_id: str
    key_version: int
    api_key_sealed: str = field(repr=False)
    secret_key_sealed: str = field(repr=False)
    api_key_hint: str
    stored_at: datetime
    updated_at: datetime


def seal_row(
    ring: KeyRing, user_id: str, credentials: ApiCredentials, stored_at: datetime, updated_at: datetime,
) -> CredentialRow:
    api_key = ring.seal(credentials.api_key, user_id, API_KEY_FIELD)
    secret = ring.seal(credentials.secret_key, user_id, SECRET_KEY_FIELD)
    return CredentialRow(
        user_id=user_id,
        key_version=api_key.key_version,
        api_key_sealed=api_key.text(),
        secret_key_sealed=secret.text(),
        api_key_hint=api_key_hint(credentials.api_key),
        stored_at=_utc(stored_at),
        updated_at=_utc(updated_at),
    )


def open_row(ring: KeyRing, row: CredentialRow) -> ApiCredentials:
    return ApiCredentials(
        api_key=ring.open(Sealed.from_text(row.key_version, row.api_key_sealed), row.user_id, API_KEY_FIELD),
        secret_key=ring.open(Sealed.from_text(row.key_version, row.secret_key_sealed), row.user_id, SECRET_KEY_FIELD),
    )


def resealed(ring: KeyRing, row: CredentialRow) -> CredentialRow | None:
    """The row sealed under the ring's current key; None when it already is (left untouched).
    Opening proves the old key still works before anything is written."""
    if row.key_version == ring.current_version:
        return None
    fresh = seal_row(ring, row.user_id, open_row(ring, row), row.stored_at, row.updated_at)
    return replace(fresh, api_key_hint=row.api_key_hint)


def summary_of(row: CredentialRow) -> CredentialSummary:
    return CredentialSummary(
        user_id=row.user_id,
        api_key_hint=row.api_key_hint,
        key_version=row.key_version,
        stored_at=row.stored_at,
        updated_at=row.updated_at,
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("credential times must be timezone-aware")
    return moment.astimezone(UTC)
