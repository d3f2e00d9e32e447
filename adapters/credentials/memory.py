"""CredentialVault in memory, for tests and the embedded default without a database file.

Still sealed: what it holds is exactly what the SQL vault writes to its table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from adapters.credentials.rows import CredentialRow, open_row, resealed, seal_row, summary_of
from adapters.security.sealing import KeyRing
from application.credentials import ApiCredentials, CredentialsRecord, CredentialSummary, append_before_change


class MemoryCredentialVault:
    def __init__(self, ring: KeyRing, rows: dict[str, CredentialRow] | None = None) -> None:
        self._ring = ring
        # Passing another vault's `shared_rows()` gives a second view of the same storage,
        # like two processes on one database (with other keys, for the rotation tests).
        self._rows: dict[str, CredentialRow] = {} if rows is None else rows

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def shared_rows(self) -> dict[str, CredentialRow]:
        return self._rows

    def rows(self) -> list[CredentialRow]:
        """The stored (sealed) rows, as a table dump would show them."""
        return list(self._rows.values())

    async def put(
        self, user_id: str, credentials: ApiCredentials, at: datetime, record: CredentialsRecord | None = None
    ) -> CredentialSummary:
        previous = self._rows.get(user_id)
        row = seal_row(self._ring, user_id, credentials, previous.stored_at if previous else at, at)
        if record is not None:
            await append_before_change(record, user_id, summary_of(previous) if previous else None, summary_of(row))
        self._rows[user_id] = row
        return summary_of(row)

    async def summary(self, user_id: str) -> CredentialSummary | None:
        row = self._rows.get(user_id)
        return summary_of(row) if row else None

    async def reveal(self, user_id: str) -> ApiCredentials | None:
        """Only the exchange adapter signing for this user may call this."""
        row = self._rows.get(user_id)
        return open_row(self._ring, row) if row else None

    async def delete(self, user_id: str, record: CredentialsRecord | None = None) -> bool:
        previous = self._rows.get(user_id)
        if previous is None:
            return False
        if record is not None:
            await append_before_change(record, user_id, summary_of(previous), None)
        self._rows.pop(user_id, None)
        return True

    async def reseal_all(self, ring: KeyRing | None = None) -> int:
        """Re-seal every row not under the current key of `ring` (default: this vault's ring),
        all or nothing; then use `ring`. Returns how many rows moved."""
        ring = ring or self._ring
        moved = {}
        for user_id, row in self._rows.items():
            fresh = resealed(ring, row)
            if fresh is not None:
                moved[user_id] = fresh
        self._rows.update(moved)
        self._ring = ring
        return len(moved)

    def _replace_row(self, user_id: str, **changes: object) -> None:
        """Tests only: tamper with a stored row."""
        self._rows[user_id] = replace(self._rows[user_id], **changes)  # type: ignore[arg-type]
