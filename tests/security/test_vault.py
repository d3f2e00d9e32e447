"""The credential vault: one contract on memory, SQLite and Postgres; nothing readable at rest;
rotation to a new key."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import ManualClock
from adapters.credentials.memory import MemoryCredentialVault
from adapters.credentials.sql_vault import SqlCredentialVault
from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.security.sealing import KeyRing, SealingError, UnknownKeyVersion, encode_key
from application.credentials import ApiCredentials, DeleteCredentials, StoreCredentials
from application.ports import EventStore
from tests.security.support import API_KEY, CREDENTIALS, SECRET_KEY, T0, find_leaks


@dataclass
class Rig:
    vault: MemoryCredentialVault | SqlCredentialVault
    store: EventStore
    dump: Callable[[], Awaitable[bytes]]
    reopen: Callable[[KeyRing], MemoryCredentialVault | SqlCredentialVault]
    tamper: Callable[[str, str], Awaitable[None]]


async def _table_dump(engine: AsyncEngine) -> bytes:
    """Every column of every table, as text."""
    out: list[str] = []
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        for name in tables:
            for row in (await conn.execute(text(f'SELECT * FROM "{name}"'))).all():
                out.append(" | ".join(str(v) for v in row))
    return "\n".join(out).encode()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    ring = KeyRing.generate(version=1)
    if request.param == "memory":
        vault = MemoryCredentialVault(ring)

        async def dump_memory() -> bytes:
            return "\n".join(
                f"{r.user_id} {r.key_version} {r.api_key_sealed} {r.secret_key_sealed} {r.api_key_hint} {r!r}"
                for r in vault.rows()
            ).encode()

        async def tamper_memory(user_id: str, column: str) -> None:
            row = next(r for r in vault.rows() if r.user_id == user_id)
            vault._replace_row(user_id, **{column: _flip(getattr(row, column))})

        yield Rig(
            vault, InMemoryEventStore(), dump_memory, lambda r: MemoryCredentialVault(r, vault.shared_rows()),
            tamper_memory
        )
        return

    if request.param == "sqlite":
        db = tmp_path / "vault.db"
        url = f"sqlite+aiosqlite:///{db}"
    else:
        url = request.getfixturevalue("fresh_postgres_database")
    engine = make_engine(url)
    await upgrade(engine)  # the table comes from migration 0004

    async def dump_sql() -> bytes:
        parts = [await _table_dump(engine)]
        if request.param == "sqlite":
            parts += [p.read_bytes() for p in tmp_path.glob("vault.db*")]  # the file, its WAL and shm
        elif shutil.which("pg_dump"):
            parsed = make_url(url)
            done = subprocess.run(
                ["pg_dump", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
                 "-U", parsed.username or "postgres", "--no-password", parsed.database or ""],
                capture_output=True, timeout=60, check=True,
                env={**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})},
            )
            assert b"COPY public.credentials" in done.stdout
            parts.append(done.stdout)
        return b"\n".join(parts)

    async def tamper_sql(user_id: str, column: str) -> None:
        async with engine.begin() as conn:
            query = text(f"SELECT {column} FROM credentials WHERE user_id = :u")
            value = (await conn.execute(query, {"u": user_id})).scalar_one()
            await conn.execute(text(f"UPDATE credentials SET {column} = :v WHERE user_id = :u"),
                               {"v": _flip(value), "u": user_id})

    try:
        yield Rig(SqlCredentialVault(engine, ring), SqlEventStore(engine), dump_sql,
                  lambda r: SqlCredentialVault(engine, r), tamper_sql)
    finally:
        await engine.dispose()


def _flip(sealed_text: str) -> str:
    """Change one character in the middle of a sealed value (still valid base64)."""
    i = len(sealed_text) // 2
    return sealed_text[:i] + ("A" if sealed_text[i] != "A" else "B") + sealed_text[i + 1:]


# --- the contract -----------------------------------------------------------------------

async def test_put_summary_reveal_delete(rig: Rig) -> None:
    vault = rig.vault
    assert await vault.summary("alice") is None and await vault.reveal("alice") is None
    summary = await vault.put("alice", CREDENTIALS, T0)
    assert summary.user_id == "alice" and summary.key_version == 1
    assert summary.api_key_hint == "mx0v…xYz9"
    assert summary.stored_at == summary.updated_at == T0
    assert await vault.summary("alice") == summary
    assert await vault.reveal("alice") == CREDENTIALS
    assert await vault.reveal("bob") is None
    assert await vault.delete("alice") is True
    assert await vault.delete("alice") is False
    assert await vault.summary("alice") is None and await vault.reveal("alice") is None


async def test_replacing_keeps_the_first_stored_time(rig: Rig) -> None:
    await rig.vault.put("alice", CREDENTIALS, T0)
    later = T0 + timedelta(hours=1)
    newer = ApiCredentials("mx0vglAnotherKey000111", "AnotherSecret000111222333")
    summary = await rig.vault.put("alice", newer, later)
    assert (summary.stored_at, summary.updated_at, summary.api_key_hint) == (T0, later, "mx0v…0111")
    assert await rig.vault.reveal("alice") == newer
    assert await rig.vault.summary("alice") == summary


async def test_users_are_kept_apart(rig: Rig) -> None:
    bob = ApiCredentials("mx0vglBobKey0000000001", "BobSecret00000000000001")
    await rig.vault.put("alice", CREDENTIALS, T0)
    await rig.vault.put("bob", bob, T0)
    assert await rig.vault.reveal("alice") == CREDENTIALS
    assert await rig.vault.reveal("bob") == bob
    await rig.vault.delete("bob")
    assert await rig.vault.reveal("alice") == CREDENTIALS


async def test_a_tampered_row_does_not_open(rig: Rig) -> None:
    await rig.vault.put("alice", CREDENTIALS, T0)
    await rig.tamper("alice", "secret_key_sealed")
    with pytest.raises(SealingError):
        await rig.vault.reveal("alice")
    assert (await rig.vault.summary("alice")) is not None  # the summary needs no opening


async def test_a_vault_with_another_key_cannot_open_the_rows(rig: Rig) -> None:
    await rig.vault.put("alice", CREDENTIALS, T0)
    with pytest.raises(SealingError, match="wrong key"):
        await rig.reopen(KeyRing.generate(version=1)).reveal("alice")


async def test_each_change_and_its_record_land_together(rig: Rig) -> None:
    clock = ManualClock(T0)
    await StoreCredentials(rig.vault, rig.store, clock)("alice", CREDENTIALS)
    newer = ApiCredentials("mx0vglNewerKey99887766", "NewerSecret998877665544")
    await StoreCredentials(rig.vault, rig.store, clock)("alice", newer)
    assert await DeleteCredentials(rig.vault, rig.store, clock)("alice") is True
    assert await DeleteCredentials(rig.vault, rig.store, clock)("alice") is False
    history = await rig.store.load("credentials-alice")
    assert [(r.version, r.event.type_name) for r in history] == [
        (1, "CredentialsStored"), (2, "CredentialsRotated"), (3, "CredentialsDeleted")]
    assert [r.position for r in history] == sorted(r.position for r in history)
    assert await rig.vault.summary("alice") is None


# --- nothing readable at rest -------------------------------------------------------------

async def test_a_dump_after_storing_shows_neither_key_nor_secret(rig: Rig) -> None:
    clock = ManualClock(T0)
    await StoreCredentials(rig.vault, rig.store, clock)("alice", CREDENTIALS)
    await StoreCredentials(rig.vault, rig.store, clock)("bob", ApiCredentials("mx0vglBobKey0000000001", SECRET_KEY))
    dump = await rig.dump()
    assert b"mx0v" in dump  # the dump is real: the hint is there
    assert find_leaks(dump, API_KEY, SECRET_KEY, "mx0vglBobKey0000000001") == []
    # The check itself can fail: the secret stored in clear would be found.
    assert find_leaks(dump + SECRET_KEY.encode(), SECRET_KEY)
    import base64

    assert find_leaks(b"x" + base64.b64encode(b"ab" + SECRET_KEY.encode()), SECRET_KEY)


# --- rotation -----------------------------------------------------------------------------

async def test_rotation_moves_every_row_to_the_new_key_and_the_old_key_is_no_longer_needed(rig: Rig) -> None:
    users = {f"user{i}": ApiCredentials(f"mx0vglRotate{i:010d}", f"RotateSecret{i:012d}") for i in range(3)}
    for user, creds in users.items():
        await rig.vault.put(user, creds, T0)
    old_ring = rig.vault.ring
    new_key = KeyRing.generate(version=2)
    assert await rig.vault.reseal_all(old_ring.with_current(new_key)) == 3
    assert await rig.vault.reseal_all() == 0  # idempotent: rows already current are left alone
    only_new = rig.reopen(new_key)
    for user, creds in users.items():
        assert (await only_new.summary(user)).key_version == 2  # type: ignore[union-attr]
        assert await only_new.reveal(user) == creds
    with pytest.raises(UnknownKeyVersion):
        await rig.reopen(old_ring).reveal("user0")
    # Stored after the rotation: under the new key directly.
    assert (await rig.vault.put("late", CREDENTIALS, T0)).key_version == 2


async def test_rotation_is_all_or_nothing(rig: Rig) -> None:
    for user in ("a", "b", "c"):
        await rig.vault.put(user, CREDENTIALS, T0)
    await rig.tamper("b", "api_key_sealed")
    ring = rig.vault.ring.with_current(KeyRing.generate(version=2))
    with pytest.raises(SealingError):
        await rig.vault.reseal_all(ring)
    assert [(await rig.vault.summary(u)).key_version for u in ("a", "b", "c")] == [1, 1, 1]  # type: ignore[union-attr]
    assert await rig.vault.reveal("a") == CREDENTIALS


async def test_the_settings_form_of_a_rotation(rig: Rig) -> None:
    """ENCRYPTION_KEY=2:new, ENCRYPTION_OLD_KEYS=1:old: exactly what `sniper keys rotate` uses."""
    import os

    old, new = os.urandom(32), os.urandom(32)
    vault = rig.reopen(KeyRing(1, {1: old}))
    await vault.put("alice", CREDENTIALS, T0)
    rotated = rig.reopen(KeyRing.parse(encode_key(new, 2), encode_key(old, 1)))
    assert await rotated.reseal_all() == 1
    assert await rig.reopen(KeyRing.parse(encode_key(new, 2))).reveal("alice") == CREDENTIALS


async def test_nothing_is_logged_that_could_open_or_show_the_credentials(
    rig: Rig, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await StoreCredentials(rig.vault, rig.store, ManualClock(T0))("alice", CREDENTIALS)
    assert await rig.vault.reveal("alice") == CREDENTIALS
    await rig.vault.reseal_all(rig.vault.ring.with_current(KeyRing.generate(version=2)))
    await rig.vault.delete("alice")
    for shown in (caplog.text, repr(rig.vault), repr(rig.vault.ring), repr(await rig.vault.summary("alice"))):
        assert find_leaks(shown.encode(), API_KEY, SECRET_KEY) == []
