"""Reading a JSON input file (a replay scenario, a recording) into its msgspec type, with one
clear line naming the file and the place when it cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from application.errors import ConfigurationError

T = TypeVar("T")


def read_input(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{kind} {path}: cannot be read: {exc.strerror or exc}") from None


def decode_input(raw: bytes, type_: type[T], kind: str, source: str) -> T:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{kind} {source}: {_where(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"{kind} {source}: not valid JSON: {exc}") from None


def _where(message: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.listings[0].coin_id`": put the place first.
    if " - at `$" in message:
        what, where = message.rsplit(" - at `$", 1)
        return f"{where.rstrip('`').lstrip('.') or 'top level'}: {what}"
    # At the root msgspec names no path at all.
    return f"top level: {message}"
