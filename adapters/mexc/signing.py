"""MEXC request signatures: lowercase hex HMAC-SHA256 keyed by the API secret, over the
query string followed directly by the body (no '&' between them)."""

from __future__ import annotations

import hashlib
import hmac
from typing import NoReturn


class Signer:
    """Holds the secret (keyed once; each signature copies the keyed state) and never shows it."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: str) -> None:
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(self, query: str, body: str = "") -> str:
        mac = self._keyed.copy()
        mac.update(query.encode())
        if body:
            mac.update(body.encode())
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "Signer(secret=<hidden>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Signer holds a secret and is not serialisable")


def sign(secret: str, query: str, body: str = "") -> str:
    """One-off signature (the client keeps a Signer instead)."""
    return Signer(secret).sign(query, body)

