"""Settings of the security core, the development key file, and `sniper keys rotate`."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
from pathlib import Path

import pytest

from adapters.credentials.sql_vault import SqlCredentialVault
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import make_engine
from adapters.kinde.development import DevelopmentIdentity
from adapters.kinde.verifier import KindeTokenVerifier
from adapters.security.sealing import KeyRing, UnknownKeyVersion, encode_key
from application.errors import ConfigurationError
from entrypoints.cli import main
from entrypoints.config import ENV_VARS, load_settings
from entrypoints.keys import credential_vault, identity_verifier, key_ring, kinde_sign_in
from tests.conftest import postgres_database_url
from tests.security.support import API_KEY, CREDENTIALS, SECRET_KEY, T0, find_leaks

KEY_1, KEY_2 = os.urandom(32), os.urandom(32)
PRODUCTION = {"SNIPER_ENV": "production", "ENCRYPTION_KEY": encode_key(KEY_1, 1), "KINDE_DOMAIN": "sniper.kinde.com",
              "KINDE_AUDIENCE": "https://api.sniper.example"}


def test_a_complete_production_setting_loads() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.sniper_env == "production" and settings.kinde_issuer == "https://sniper.kinde.com"
    assert encode_key(KEY_1, 1) not in repr(settings)
    assert not (settings.kinde_client_id or settings.kinde_client_secret or settings.kinde_redirect_url)


@pytest.mark.parametrize(("drop_or_change", "message"), [
    ({"ENCRYPTION_KEY": None}, "production needs ENCRYPTION_KEY"),
    ({"KINDE_DOMAIN": None}, "production needs KINDE_DOMAIN"),
    ({"KINDE_AUDIENCE": None}, "KINDE_AUDIENCE must be set"),
    ({"KINDE_DOMAIN": "http://sniper.kinde.com"}, "https in production"),
    ({"ENCRYPTION_KEY": "1:tooshort"}, "ENCRYPTION_KEY must"),
    ({"SNIPER_ENV": "staging"}, "SNIPER_ENV must be development or production"),
    ({"KINDE_CLIENT_ID": "abc"}, "KINDE_CLIENT_SECRET, KINDE_REDIRECT_URL must be set too"),
])
def test_production_refuses_to_start_half_configured(drop_or_change: dict[str, str | None], message: str) -> None:
    env = {**PRODUCTION, **drop_or_change}
    with pytest.raises(ConfigurationError, match=message) as refused:
        load_settings({k: v for k, v in env.items() if v is not None})
    assert "\n" not in str(refused.value)
    assert encode_key(KEY_1, 1) not in str(refused.value)


def test_old_keys_without_a_current_key_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="ENCRYPTION_OLD_KEYS needs ENCRYPTION_KEY"):
        load_settings({"ENCRYPTION_OLD_KEYS": encode_key(KEY_1, 1)})


def test_production_gets_kinde_and_development_gets_the_loud_development_identity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from adapters.clock import ManualClock

    clock = ManualClock(T0)
    assert isinstance(identity_verifier(load_settings(PRODUCTION), clock), KindeTokenVerifier)
    caplog.set_level(logging.WARNING)
    dev = identity_verifier(load_settings({"SNIPER_USER": "me"}), clock)
    assert isinstance(dev, DevelopmentIdentity) and dev.user_id == "me"
    assert "DEVELOPMENT IDENTITY" in caplog.text
    sign_in = kinde_sign_in(load_settings({**PRODUCTION, "KINDE_CLIENT_ID": "cid", "KINDE_CLIENT_SECRET": "csecret1234",
                                           "KINDE_REDIRECT_URL": "https://sniper.example/auth/callback"}), dev)
    assert sign_in is not None and "csecret1234" not in repr(sign_in)
    assert kinde_sign_in(load_settings({}), dev) is None


def test_sniper_config_never_prints_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"ENCRYPTION_KEY": encode_key(KEY_1, 3), "ENCRYPTION_OLD_KEYS": encode_key(KEY_2, 2),
               "KINDE_DOMAIN": "sniper.kinde.com", "KINDE_AUDIENCE": "aud", "KINDE_CLIENT_ID": "cid",
               "KINDE_CLIENT_SECRET": "client-secret-value-123", "KINDE_REDIRECT_URL": "https://x.example/cb"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert main(["config"], out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    for name in ("ENCRYPTION_KEY", "ENCRYPTION_OLD_KEYS", "KINDE_CLIENT_SECRET"):
        assert secrets[name] not in text
    assert "current: sniper.kinde.com" in text  # not a secret
    assert {"SNIPER_ENV", "KINDE_REDIRECT_URL"} <= {v.name for v in ENV_VARS}


# --- the development key file ------------------------------------------------------------------

def test_development_without_a_key_uses_a_private_key_file_next_to_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = load_settings({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"})
    first = key_ring(settings)
    key_file = tmp_path / "dev.db.dev-encryption-key.SECRET"  # a name that says what it is
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "DEVELOPMENT key file" in caplog.text and key_file.read_text().strip() not in caplog.text
    sealed = first.seal("x", "u", "f")
    assert key_ring(settings).open(sealed, "u", "f") == "x"  # the same key next time


def test_a_key_file_under_its_old_name_is_renamed_and_keeps_opening_what_it_sealed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    old = tmp_path / "dev.db.key"
    old.write_text(encode_key(KEY_1, 1) + "\n")
    old.chmod(0o600)
    sealed = KeyRing(1, {1: KEY_1}).seal("secret", "u", "f")
    settings = load_settings({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"})
    assert key_ring(settings).open(sealed, "u", "f") == "secret"
    new = tmp_path / "dev.db.dev-encryption-key.SECRET"
    assert not old.exists() and new.read_text().strip() == encode_key(KEY_1, 1)
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert f"renamed the development key file {old} to {new}" in caplog.text
    assert key_ring(settings).open(sealed, "u", "f") == "secret"  # and next time, from the new name


def test_a_key_file_under_the_new_name_wins_over_one_under_the_old(tmp_path: Path) -> None:
    (tmp_path / "dev.db.key").write_text(encode_key(KEY_2, 1) + "\n")
    (tmp_path / "dev.db.dev-encryption-key.SECRET").write_text(encode_key(KEY_1, 1) + "\n")
    settings = load_settings({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"})
    sealed = KeyRing(1, {1: KEY_1}).seal("secret", "u", "f")
    assert key_ring(settings).open(sealed, "u", "f") == "secret"
    assert (tmp_path / "dev.db.key").exists()  # left alone: nothing is ever overwritten or deleted unread


def test_development_postgres_without_a_key_is_refused() -> None:
    settings = load_settings({"DATABASE_URL": postgres_database_url("x")})  # read, never reached
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY must be set"):
        key_ring(settings)
    assert isinstance(credential_vault(load_settings({"DATABASE_URL": "memory://"}), None).ring, KeyRing)


# --- sniper keys rotate ------------------------------------------------------------------------

def test_sniper_keys_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "rotate.db"
    url = f"sqlite+aiosqlite:///{db}"

    async def store_under_key_1() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            vault = SqlCredentialVault(engine, KeyRing(1, {1: KEY_1}))
            for user in ("alice", "bob"):
                await vault.put(user, CREDENTIALS, T0)
        finally:
            await engine.dispose()

    asyncio.run(store_under_key_1())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ENCRYPTION_KEY", encode_key(KEY_2, 2))
    monkeypatch.setenv("ENCRYPTION_OLD_KEYS", encode_key(KEY_1, 1))

    def sniper(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()

    code, out, err = sniper("keys", "rotate")
    assert (code, err) == (0, "") and out.startswith(
        "re-encrypted 2 credential rows under key version 2; 0 already current"
    )
    code, out, _ = sniper("keys", "rotate")
    assert code == 0 and out.startswith("re-encrypted 0 credential rows under key version 2; 2 already current")
    for text in (out,):
        assert encode_key(KEY_2, 2) not in text and encode_key(KEY_1, 1) not in text

    async def read_with(ring: KeyRing, user: str):  # noqa: ANN202
        engine = make_engine(url)
        try:
            return await SqlCredentialVault(engine, ring).reveal(user)
        finally:
            await engine.dispose()

    assert asyncio.run(read_with(KeyRing(2, {2: KEY_2}), "bob")) == CREDENTIALS  # the old key is no longer needed
    with pytest.raises(UnknownKeyVersion):
        asyncio.run(read_with(KeyRing(1, {1: KEY_1}), "bob"))
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("rotate.db*"))
    assert find_leaks(raw, API_KEY, SECRET_KEY) == []

    # Without the old key, nothing opens: a clear error, one line, nothing moved.
    monkeypatch.setenv("ENCRYPTION_KEY", encode_key(os.urandom(32), 3))
    monkeypatch.delenv("ENCRYPTION_OLD_KEYS")
    code, out, err = sniper("keys", "rotate")
    assert code == 1 and err.count("\n") == 1 and "version 2" in err and "ENCRYPTION_OLD_KEYS" in err


def test_sniper_keys_rotate_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    err = io.StringIO()
    assert main(["keys", "rotate"], out=io.StringIO(), err=err) == 2
    assert "needs ENCRYPTION_KEY" in err.getvalue()
