"""Signing in with Kinde: the OAuth 2.0 authorization-code flow with PKCE, through authlib's
httpx client (AsyncOAuth2Client).

1. `start()` makes a login URL (Kinde's /oauth2/auth) with a fresh random `state` and a PKCE
   code verifier (S256 challenge in the URL). The web layer keeps `state` and `code_verifier`
   for the callback, server-side or in a signed, HttpOnly cookie, and sends the browser there.
2. Kinde sends the browser back to the redirect URL with `code` and `state`. `finish()` checks
   the state (constant-time), exchanges the code at /oauth2/token with the client secret and
   the code verifier, and verifies the access token it got like any API request's token.

Tokens are never logged; SignInFailed messages are safe to show.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from application.identity import Identity, IdentityVerifier, InvalidToken

try:  # authlib's httpx integration runs on the `httpx2` fork when it is installed
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover
    _TRANSPORT_ERRORS = (httpx.HTTPError,)

DEFAULT_SCOPE = "openid profile email"


class SignInFailed(Exception):
    """The sign-in could not be completed. The message is a safe reason."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """Where to send the browser, and what to keep until the callback."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SignedIn:
    identity: Identity
    access_token: str = field(repr=False)
    expires_in: int | None = None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)


class KindeSignIn:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_url: str,
        verifier: IdentityVerifier,
        audience: str | None = None,
        scope: str = DEFAULT_SCOPE,
        timeout: float = 10.0,
    ) -> None:
        if not (issuer and client_id and client_secret and redirect_url):
            raise ValueError("Kinde sign-in needs the issuer, client id, client secret and redirect URL")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_url = redirect_url
        self.audience = audience
        self.scope = scope
        self._verifier = verifier
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"KindeSignIn(issuer={self.issuer!r}, client_id={self.client_id!r})"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - an OAuth method's name
            scope=self.scope,
            redirect_uri=self.redirect_url,
            code_challenge_method="S256",
            timeout=self._timeout,
        )

    def start(self) -> LoginRequest:
        state = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters: within PKCE's 43-128
        extra: dict[str, Any] = {"audience": self.audience} if self.audience else {}
        client = self._client()
        url, _ = client.create_authorization_url(
            self.authorization_endpoint, state=state, code_verifier=code_verifier, **extra
        )
        return LoginRequest(url=url, state=state, code_verifier=code_verifier)

    async def finish(self, code: str, returned_state: str, login: LoginRequest) -> SignedIn:
        """Complete the sign-in started by `login` with the callback's `code` and `state`."""
        if not returned_state or not hmac.compare_digest(returned_state.encode(), login.state.encode()):
            raise SignInFailed("sign-in state does not match: start again")
        if not code:
            raise SignInFailed("the callback carries no authorization code")
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    self.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=login.code_verifier,
                    redirect_uri=self.redirect_url,
                )
        except AuthlibBaseError as exc:
            raise SignInFailed(f"Kinde refused the sign-in: {getattr(exc, 'error', None) or 'error'}") from None
        except ValueError:  # not JSON
            raise SignInFailed("Kinde answered the sign-in with something unreadable") from None
        except _TRANSPORT_ERRORS as exc:
            raise SignInFailed(f"Kinde did not answer the sign-in: {type(exc).__name__}") from None
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise SignInFailed("Kinde answered without an access token")
        try:
            identity = await self._verifier.verify(access_token)
        except InvalidToken as exc:
            raise SignInFailed(f"the access token from Kinde was refused: {exc}") from None
        expires_in = token.get("expires_in")
        return SignedIn(
            identity=identity,
            access_token=access_token,
            expires_in=(int(expires_in) if isinstance(expires_in, int | float | str) and str(expires_in).isdigit()
                        else None),
            refresh_token=token.get("refresh_token"),
            id_token=token.get("id_token"),
        )

    def logout_url(self, return_to: str) -> str:
        """Kinde's logout endpoint, sending the browser back to `return_to` afterwards."""
        return f"{self.issuer}/logout?{urlencode({'redirect': return_to})}"
