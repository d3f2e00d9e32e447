"""Who is calling: the identity a verified bearer token stands for.

The HTTP API asks an IdentityVerifier to turn the request's bearer token into an Identity;
production verifies Kinde access tokens (adapters/kinde/verifier.py), the embedded default
uses a loudly marked development identity (adapters/kinde/development.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from application.credentials import credentials_stream
from domain.listing import SYSTEM_USER
from domain.safety import GLOBAL_SCOPE, SAFETY_MONITOR

# Every user id the identity provider issues starts with this; nothing else the service names
# does (the command line's SNIPER_USER, the emergency stop's `global` scope, `system`...), so no
# token can act as one of those, whatever its subject.
ISSUED_PREFIX = "kinde:"
# The longest stream id built from a user id, `credentials-<user id>`, must fit the 200
# characters of the events' stream_id column.
MAX_USER_ID_CHARS = 200 - len(credentials_stream(""))
MAX_SUBJECT_CHARS = MAX_USER_ID_CHARS - len(ISSUED_PREFIX)
# Ids the service itself acts under or scopes by: never a user's.
RESERVED_USER_IDS = frozenset({GLOBAL_SCOPE, SYSTEM_USER, SAFETY_MONITOR})


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in user. `user_id` is `kinde:<sub>` for a Kinde token (issued_user_id) and
    SNIPER_USER for the local development identity, which `development` marks and production
    refuses to create."""

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


def _visible_ascii(text: str) -> bool:
    return all("!" <= ch <= "~" for ch in text)


def issued_user_id(subject: object, keep_bare: Iterable[str] = ()) -> str:
    """The user id of a token's subject: ISSUED_PREFIX + subject, or the bare subject for the
    few listed in `keep_bare` (KINDE_LEGACY_SUBJECTS: users whose data predates the prefix,
    checked by `operator_user_id_problem` when the settings load).

    A subject that storage could not hold (control or non-ASCII characters, more than
    MAX_SUBJECT_CHARS) is refused with InvalidToken naming the rule, so the caller gets a 401,
    never a failure deeper down."""
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("token has no subject")
    if len(subject) > MAX_SUBJECT_CHARS or not _visible_ascii(subject):
        raise InvalidToken(
            f"token subject refused: it must be 1-{MAX_SUBJECT_CHARS} visible ASCII characters (no spaces)")
    if subject in keep_bare:
        return subject
    return ISSUED_PREFIX + subject


def operator_user_id_problem(user_id: str) -> str | None:
    """Why `user_id` cannot be a user id the operator names (SNIPER_USER, a legacy subject), or
    None: it must fit storage, and be neither reserved nor one the identity provider issues."""
    if not user_id or len(user_id) > MAX_USER_ID_CHARS or not _visible_ascii(user_id):
        return f"must be 1-{MAX_USER_ID_CHARS} visible ASCII characters (no spaces)"
    if user_id in RESERVED_USER_IDS:
        return f"is reserved for the service ({', '.join(sorted(RESERVED_USER_IDS))})"
    if user_id.startswith(ISSUED_PREFIX):
        return f"must not start with {ISSUED_PREFIX!r} (the ids of signed-in users)"
    return None
