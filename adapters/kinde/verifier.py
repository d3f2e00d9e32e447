"""Kinde access tokens, verified locally against Kinde's published keys (JWKS), with joserfc.

What a token must be, checked in this order (the first failure is the reason given):
1. a compact JWS of sane size whose header says `alg: RS256` and names a key id (`kid`);
   `none`, HS256 (the classic "sign with the public key" confusion) and every other
   algorithm are refused before any key is looked up, as are headers that point at keys
   elsewhere (`jku`, `jwk`, `x5u`, `x5c`);
2. signed by the key with that id in `<issuer>/.well-known/jwks.json`. The key set is cached
   for at most `jwks_max_age` (KINDE_JWKS_MAX_AGE_SECONDS): a key Kinde withdrew stops opening
   the API within that age, although a holder of the withdrawn key never sends an unknown key
   id. An unknown key id triggers a refetch too (Kinde rotated its keys). Either way at most
   one fetch per `refetch_interval`, so a flood of tokens with made-up key ids cannot hammer
   Kinde. A failed refresh keeps the keys it has (logged) and is retried after the interval;
3. claims: `iss` equal to the issuer (https://<KINDE_DOMAIN>), `aud` containing the configured
   audience, `exp` required and in the future, `nbf`/`iat` not in the future, all against the
   injected clock with a small leeway; `sub` required: the user id is `kinde:<sub>`
   (application/identity.py: issued_user_id), or the bare `sub` for a KINDE_LEGACY_SUBJECTS one.

Every refusal is an InvalidToken whose message is a short, safe reason; the token is never
logged or echoed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

from application.identity import Identity, InvalidToken, issued_user_id
from application.ports import Clock

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 16 * 1024
_FOREIGN_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")
_CLAIM_REASONS = {
    "iss": "wrong issuer",
    "aud": "wrong audience",
    "exp": "bad expiry",
    "nbf": "token not yet valid",
    "iat": "token issued in the future",
    "sub": "bad subject",
}


class SigningKeysUnavailable(InvalidToken):
    """Kinde's key set could not be fetched: the token cannot be checked, so it is refused."""


def kinde_issuer(domain: str) -> str:
    """`https://<domain>` for a bare Kinde domain; a full URL is kept (local fakes use http)."""
    domain = domain.strip().rstrip("/")
    return domain if "://" in domain else f"https://{domain}"


class KindeTokenVerifier:
    """IdentityVerifier for Kinde access tokens (RS256 only)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        leeway: timedelta = timedelta(seconds=30),
        refetch_interval: timedelta = timedelta(seconds=60),
        jwks_url: str | None = None,
        jwks_max_age: timedelta = timedelta(seconds=300),
        legacy_subjects: frozenset[str] = frozenset(),
    ) -> None:
        if not issuer or not audience:
            raise ValueError("a Kinde verifier needs an issuer and an audience")
        if jwks_max_age < refetch_interval:
            raise ValueError("the key set's max age cannot be shorter than the refetch interval")
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url or f"{self.issuer}/.well-known/jwks.json"
        self._clock = clock
        self._http = http
        self._owns_http = http is None
        self._leeway = leeway
        self._refetch_interval = refetch_interval
        self._max_age = jwks_max_age
        self._legacy_subjects = legacy_subjects
        self._keys: dict[str, RSAKey] = {}
        self._fetched_at: datetime | None = None  # the last attempt
        self._loaded_at: datetime | None = None  # the last attempt that gave a key set
        self._fetch_lock = asyncio.Lock()
        self.fetch_count = 0

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify(self, bearer_token: str) -> Identity:
        header = _header_of(bearer_token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported token algorithm")
        if any(name in header for name in _FOREIGN_KEY_HEADERS):
            raise InvalidToken("token names a key outside the issuer's key set")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = await self._key(kid)
        try:
            token = jwt.decode(bearer_token, key, algorithms=[ALGORITHM])
        except BadSignatureError:
            raise InvalidToken("bad token signature") from None
        except JoseError:
            raise InvalidToken("malformed token") from None
        claims = token.claims
        self._check_claims(claims)
        user_id = issued_user_id(claims["sub"], self._legacy_subjects)
        email = claims.get("email")
        return Identity(user_id=user_id, email=email if isinstance(email, str) and email else None)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        registry = JWTClaimsRegistry(
            now=lambda: int(self._clock.now().timestamp()),
            leeway=int(self._leeway.total_seconds()),
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("token expired") from None
        except MissingClaimError as exc:
            raise InvalidToken(f"token lacks claim {exc.claim}") from None
        except InvalidClaimError as exc:
            raise InvalidToken(_CLAIM_REASONS.get(exc.claim, "invalid claim")) from None
        except JoseError:
            raise InvalidToken("invalid claims") from None

    # --- keys -------------------------------------------------------------------------

    async def _key(self, kid: str) -> RSAKey:
        key = self._keys.get(kid)
        if key is not None and not self._stale():
            return key
        async with self._fetch_lock:  # concurrent requests wait for one fetch
            if (self._keys.get(kid) is None or self._stale()) and self._may_fetch():
                await self._fetch()
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        return key

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock.now() - self._loaded_at >= self._max_age

    def _may_fetch(self) -> bool:
        if self._fetched_at is None:
            return True
        return self._clock.now() - self._fetched_at >= self._refetch_interval

    async def _fetch(self) -> None:
        # Counted as a fetch even when it fails, so an unreachable Kinde is not retried per request.
        self._fetched_at = self._clock.now()
        self.fetch_count += 1
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        try:
            response = await self._http.get(self.jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch Kinde signing keys from %s: %s", self.jwks_url, type(exc).__name__)
            if not self._keys:
                raise SigningKeysUnavailable("signing keys unavailable") from None
            return
        keys = _rsa_signing_keys(document)
        if not keys:
            log.warning("Kinde key set at %s holds no usable RS256 key", self.jwks_url)
        else:
            self._keys = keys
            self._loaded_at = self._fetched_at
            log.info("Kinde signing keys loaded: %s", ", ".join(sorted(keys)))


def _header_of(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token:
        raise InvalidToken("no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def _rsa_signing_keys(document: Any) -> dict[str, RSAKey]:
    """The usable keys of a JWKS document by key id: RSA, for signatures, RS256 if stated.
    Anything else (and any key that does not import) is skipped, not fatal."""
    found: dict[str, RSAKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        if "d" in entry:  # a private key published by mistake: never use it, never keep it
            continue
        try:
            found[kid] = RSAKey.import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
    return found
