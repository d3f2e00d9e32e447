"""Who is calling: the identity a verified bearer token stands for.

The HTTP API asks an IdentityVerifier to turn the request's bearer token into an Identity;
production verifies Kinde access tokens (adapters/kinde/verifier.py), the embedded default
uses a loudly marked development identity (adapters/kinde/development.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in user. `user_id` is the token's subject; `development` marks the local
    development identity, which production refuses to create."""

    user_id: str
    email: str | None = None
    development: bool = False


class InvalidToken(Exception):
    """The bearer token was refused. The message is a safe reason ("token expired",
    "wrong audience"...) and never contains the token itself."""


class IdentityVerifier(Protocol):
    """Turns a bearer token into an Identity, or refuses it."""

    async def verify(self, bearer_token: str) -> Identity:
        """The identity the token stands for; raises InvalidToken when it is not acceptable."""
        ...
