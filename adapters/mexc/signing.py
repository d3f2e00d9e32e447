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


def payload_without_signature(query: str, body: str = "") -> tuple[str, str | None]:
    """What was signed, and the signature sent: `signature=` removed from query or body.

    Used by the fake exchange to check a request the way MEXC does.
    """
    signature = None
    parts = []
    for piece in query.split("&") if query else []:
        if piece.startswith("signature="):
            signature = piece[len("signature="):]
        else:
            parts.append(piece)
    body_parts = []
    for piece in body.split("&") if body else []:
        if piece.startswith("signature="):
            signature = piece[len("signature="):]
        else:
            body_parts.append(piece)
    return "&".join(parts) + "&".join(body_parts), signature
