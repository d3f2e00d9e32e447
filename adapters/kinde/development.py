"""The local development identity: the embedded default's stand-in for Kinde.

Every request bearing the development token (default "dev") is the one fixed development user
(default "local"). It exists so a fresh laptop can use the API without a Kinde account; it is
announced with a loud WARNING when created and refuses to exist when SNIPER_ENV=production.
"""

from __future__ import annotations

import hmac
import logging

from application.errors import ConfigurationError
from application.identity import Identity, InvalidToken

log = logging.getLogger(__name__)

DEVELOPMENT_TOKEN = "dev"  # noqa: S105 - the development sign-in, refused outside development mode
DEVELOPMENT_USER = "local"
PRODUCTION = "production"


class DevelopmentIdentity:
    """IdentityVerifier accepting one fixed token as one fixed user. Never in production."""

    def __init__(self, environment: str, user_id: str = DEVELOPMENT_USER, token: str = DEVELOPMENT_TOKEN) -> None:
        if environment == PRODUCTION:
            raise ConfigurationError(
                "the development identity is refused when SNIPER_ENV=production: set KINDE_DOMAIN and KINDE_AUDIENCE"
            )
        if not user_id or not token:
            raise ValueError("the development identity needs a user id and a token")
        self.user_id = user_id
        self._token = token
        log.warning(
            "!!! DEVELOPMENT IDENTITY IN USE: no sign-in; every request with `Authorization: Bearer %s` "
            "acts as user %r. Never expose this API beyond this machine; set KINDE_DOMAIN for real sign-in. !!!",
            token, user_id,
        )

    def __repr__(self) -> str:
        return f"DevelopmentIdentity(user_id={self.user_id!r})"

    async def verify(self, bearer_token: str) -> Identity:
        if not isinstance(bearer_token, str) or not hmac.compare_digest(bearer_token.encode(), self._token.encode()):
            raise InvalidToken("not the development token")
        return Identity(user_id=self.user_id, email=None, development=True)
