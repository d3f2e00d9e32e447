"""`sniper init`: write `docker/.env`, which docker/compose.yaml reads, with a fresh ENCRYPTION_KEY.

Compose reads the `.env` of its project directory, the compose file's directory: `docker/.env`. Not
`./.env`: local commands read that one (entrypoints/config.py), and what compose needs (its
ENCRYPTION_KEY, SNIPER_DEV_IDENTITY_ON_NETWORK=1) has no business in a `sniper serve` on this machine.

The file holds a secret (the key that seals users' MEXC credentials), so it is created with mode
0600, and an existing one is never replaced without `--force`: replacing it loses the key, and with
it every credential stored under that key.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TextIO

from application.errors import ConfigurationError
from entrypoints.keys import new_key

# Every other variable docker/compose.yaml interpolates, with its default there (tests/test_compose_processes.py
# keeps this list and the compose file in step).
COMPOSE_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("SNIPER_MARKET", "mexc"),
    ("SNIPER_LIVE", "0"),
    ("SNIPER_ENV", "development"),
    ("ENCRYPTION_OLD_KEYS", ""),
    ("KINDE_DOMAIN", ""),
    ("KINDE_AUDIENCE", ""),
    ("KINDE_CLIENT_ID", ""),
    ("KINDE_CLIENT_SECRET", ""),
    ("KINDE_REDIRECT_URL", ""),
    ("MEXC_API_KEY", ""),
    ("MEXC_SECRET_KEY", ""),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    ("SLACK_WEBHOOK_URL", ""),
)


DEFAULT_PATH = Path("docker") / ".env"  # from the repository root, where docker compose finds it unasked


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH,
                        help="where to write it (default: docker/.env, which compose reads; run from the "
                             "repository root)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing file "
                             "(its ENCRYPTION_KEY is lost, and the credentials sealed with it)")


def env_file_text(key: str, path: Path = DEFAULT_PATH) -> str:
    lines = [
        "# mexc-sniper settings for docker/compose.yaml, written by `sniper init`; for compose only (local",
        "# commands read ./.env, never this file). From the repository root:",
        f"#   {compose_command(path)}",
        "# Secret: keep it mode 0600, never commit it, and keep a copy of ENCRYPTION_KEY somewhere safe:",
        "# the MEXC credentials users store are sealed with it and cannot be opened without it.",
        f"ENCRYPTION_KEY={key}",
        "",
        "# !!! DANGEROUS: the API accepts the development identity (`Authorization: Bearer dev` acts as",
        "# SNIPER_USER, whose live orders use MEXC_API_KEY) from anyone who reaches it. Safe only while",
        "# docker/compose.yaml publishes the API on 127.0.0.1. Before publishing it anywhere else, set",
        "# SNIPER_ENV=production, KINDE_DOMAIN and KINDE_AUDIENCE below, and delete this line.",
        "SNIPER_DEV_IDENTITY_ON_NETWORK=1",
        "",
        "# The other settings compose passes on, at their defaults (meanings: README, `sniper config`).",
        *(f"# {name}={default}" for name, default in COMPOSE_DEFAULTS),
    ]
    return "\n".join(lines) + "\n"


def run_init(args: argparse.Namespace, out: TextIO) -> int:
    path: Path = args.path
    if path.is_dir():
        raise ConfigurationError(f"--path must name a file, {str(path)!r} is a directory")
    if path == DEFAULT_PATH and not path.parent.is_dir():
        raise ConfigurationError("sniper init writes docker/.env, next to docker/compose.yaml: run it from the "
                                 "repository root, or name another file with --path")
    if not path.parent.is_dir():
        raise ConfigurationError(f"--path: the directory {str(path.parent)!r} does not exist")
    if path.exists() and not args.force:
        raise ConfigurationError(f"{path} exists: kept as it is (its ENCRYPTION_KEY seals stored credentials); "
                                 "sniper init --force replaces it")
    text = env_file_text(new_key(), path)
    try:
        _write_new(path, text, replace=args.force)
    except FileExistsError:  # another process made it meanwhile
        raise ConfigurationError(f"{path} exists: kept as it is; sniper init --force replaces it") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from None
    out.write(f"wrote {path} (mode 0600) with a new ENCRYPTION_KEY; start the stack with\n"
              f"  {compose_command(path)}\n")
    return 0


def compose_command(path: Path) -> str:
    """How to start the stack with this file: compose reads docker/.env unasked, another file by --env-file."""
    if path.resolve() == DEFAULT_PATH.resolve():
        return "docker compose -f docker/compose.yaml up --build"
    return f"docker compose -f docker/compose.yaml --env-file {path} up --build"


def _write_new(path: Path, text: str, replace: bool) -> None:
    """The file is whole, mode 0600, or not there at all (an old one stays until the new one is whole)."""
    if replace:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        written = Path(name)
    else:
        fd, written = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if replace:
            os.replace(written, path)
    except BaseException:
        written.unlink(missing_ok=True)
        raise
