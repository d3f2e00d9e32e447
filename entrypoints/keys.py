"""Wiring of the security core, and `sniper keys`.

* `key_ring(settings)`: the credential-sealing keys. ENCRYPTION_KEY (+ ENCRYPTION_OLD_KEYS)
  when set. In development without it: a random key generated once into a file next to the
  SQLite database (`<db>.dev-encryption-key.SECRET`, mode 0600), announced with a WARNING every time it is used; with
  `memory://` a throwaway key (nothing is kept anyway). Postgres without ENCRYPTION_KEY is
  refused even in development (a key file on one laptop next to a shared database would
  lock every other process out of the rows), and production always needs ENCRYPTION_KEY
  (load_settings refuses the start).
* `credential_vault`, `identity_verifier`, `kinde_sign_in`, `credential_checker`: the adapters
  for the HTTP app's container.
* `sniper keys rotate`: re-seal every stored credential under the current ENCRYPTION_KEY.
  `sniper keys new`: print a fresh key in the ENCRYPTION_KEY format.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.credentials.memory import MemoryCredentialVault
from adapters.credentials.sql_vault import SqlCredentialVault
from adapters.eventstore.sqlalchemy_store import sqlite_path
from adapters.kinde.factory import identity_verifier as _identity_verifier
from adapters.kinde.oauth import KindeSignIn
from adapters.mexc.credential_check import MexcCredentialChecker
from adapters.security.sealing import KEY_BYTES, KeyRing, encode_key
from application.errors import ConfigurationError
from application.identity import IdentityVerifier
from application.ports import Clock
from entrypoints.config import Settings, load_settings, revealed

log = logging.getLogger(__name__)

# The name says what the file is, in every `ls` and `git status`: never share or commit it.
KEY_FILE_SUFFIX = ".dev-encryption-key.SECRET"
OLD_KEY_FILE_SUFFIX = ".key"  # its earlier name: such a file is moved to the new name on first use


# --- keys -----------------------------------------------------------------------------------

def new_key(version: int = 1) -> str:
    """A fresh random key in the ENCRYPTION_KEY format (`sniper keys new`, `sniper init`)."""
    return encode_key(os.urandom(KEY_BYTES), version)


def key_ring(settings: Settings) -> KeyRing:
    if settings.encryption_key is not None:
        return KeyRing.parse(settings.encryption_key.reveal(), revealed(settings.encryption_old_keys))
    if settings.sniper_env == "production":  # load_settings refuses this already; never fall through to a file
        raise ConfigurationError("SNIPER_ENV=production needs ENCRYPTION_KEY")
    if settings.store_url == "memory://":
        log.warning("ENCRYPTION_KEY is not set: credentials are sealed under a throwaway key (memory:// keeps nothing)")
        return KeyRing.generate()
    db_file = sqlite_path(settings.store_url)
    if db_file is None:
        raise ConfigurationError(
            "ENCRYPTION_KEY must be set to store credentials in this database (only the embedded SQLite "
            "default may use a local key file); make one with `sniper keys new`"
        )
    path = db_file.with_name(db_file.name + KEY_FILE_SUFFIX)
    _adopt_old_key_file(db_file.with_name(db_file.name + OLD_KEY_FILE_SUFFIX), path)
    return _development_key_file(path)


def _adopt_old_key_file(old: Path, path: Path) -> None:
    """A key file under the old name holds the key existing rows are sealed with: it becomes the
    key file, never replaced by a fresh key. A hard link, then the unlink, so that a key file
    another process has just made under the new name is never overwritten (a plain rename where
    the file system has no hard links)."""
    if path.exists() or not old.exists():
        return
    try:
        os.link(old, path)
    except (FileExistsError, FileNotFoundError):  # another process moved it first
        return
    except OSError:
        try:
            os.rename(old, path)
        except OSError as exc:
            raise ConfigurationError(f"cannot rename the development key file {old} to {path.name}: "
                                     f"{exc.strerror}") from None
    old.unlink(missing_ok=True)
    log.warning("renamed the development key file %s to %s (the new name says it is secret)", old, path)


def _development_key_file(path: Path) -> KeyRing:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_key() + "\n")
            log.warning("generated a development encryption key in %s", path)
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the development key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the development key file %s is readable by others: chmod 600 it", path)
    log.warning(
        "!!! ENCRYPTION_KEY is not set: users' MEXC credentials are sealed with the DEVELOPMENT key file %s. "
        "Anyone who can read that file can open them. Set ENCRYPTION_KEY for anything but local trials. !!!",
        path,
    )
    return KeyRing.parse(text, current_name=f"the key file {path}")


# --- adapters for the container --------------------------------------------------------------

def credential_vault(settings: Settings, engine: AsyncEngine | None) -> MemoryCredentialVault | SqlCredentialVault:
    """The vault for DATABASE_URL: the SQL table on the event store's engine, or in memory."""
    ring = key_ring(settings)
    if engine is None:
        return MemoryCredentialVault(ring)
    return SqlCredentialVault(engine, ring)


def identity_verifier(settings: Settings, clock: Clock, http: httpx.AsyncClient | None = None) -> IdentityVerifier:
    """Kinde when KINDE_DOMAIN is set, else the development identity (refused in production)."""
    s = settings
    return _identity_verifier(s.sniper_env, s.kinde_issuer or None, s.kinde_audience or None, clock, http,
                              development_user=s.sniper_user, legacy_subjects=s.legacy_subjects,
                              jwks_max_age=timedelta(seconds=s.kinde_jwks_max_age_seconds))


def kinde_sign_in(settings: Settings, verifier: IdentityVerifier) -> KindeSignIn | None:
    """The browser sign-in, when KINDE_CLIENT_ID, _SECRET and _REDIRECT_URL are set; else None."""
    s = settings
    if not (s.kinde_issuer and s.kinde_client_id and s.kinde_client_secret and s.kinde_redirect_url):
        return None
    return KindeSignIn(s.kinde_issuer, s.kinde_client_id, s.kinde_client_secret.reveal(), s.kinde_redirect_url,
                       verifier, audience=s.kinde_audience or None)


def credential_checker(settings: Settings) -> MexcCredentialChecker:
    return MexcCredentialChecker(settings.mexc_base_url, recv_window_ms=settings.mexc_recv_window_ms)


# --- `sniper keys` ---------------------------------------------------------------------------

def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    tools = parser.add_subparsers(dest="keys_command", required=True, metavar="TOOL")
    tools.add_parser("rotate", help="re-encrypt every stored credential under the current ENCRYPTION_KEY "
                                    "(older keys in ENCRYPTION_OLD_KEYS); safe to repeat")
    new = tools.add_parser("new", help="print a new random key in the ENCRYPTION_KEY format")
    new.add_argument("--key-version", type=int, default=1,
                     help="its version (default 1; higher than the current one to rotate)")


def run_keys_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.keys_command == "new":
        if args.key_version < 1:
            raise ConfigurationError(f"--key-version must be a whole number from 1, got {args.key_version}")
        out.write(new_key(args.key_version) + "\n")
        return 0
    settings = load_settings()
    if settings.encryption_key is None:
        raise ConfigurationError(
            "sniper keys rotate needs ENCRYPTION_KEY (the new key) and ENCRYPTION_OLD_KEYS (the old ones)"
        )
    return asyncio.run(rotate(settings, out))


async def rotate(settings: Settings, out: TextIO) -> int:
    if settings.store_url == "memory://":
        raise ConfigurationError("DATABASE_URL=memory:// keeps no credentials to rotate")
    from adapters.eventstore.migrate import ensure_schema
    from adapters.eventstore.sqlalchemy_store import open_engine

    ring = key_ring(settings)
    engine = await open_engine(settings.store_url)
    try:
        await ensure_schema(engine, initialise_empty=False)
        vault = SqlCredentialVault(engine, ring)
        before = await vault.count_by_version()
        moved = await vault.reseal_all()
    finally:
        await engine.dispose()
    current = before.get(ring.current_version, 0)
    out.write(f"re-encrypted {moved} credential row{'s' if moved != 1 else ''} under key version "
              f"{ring.current_version}; {current} already current\n")
    if moved or current:
        out.write("every row is now sealed under the current key: ENCRYPTION_OLD_KEYS is no longer needed\n")
    return 0
