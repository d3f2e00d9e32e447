"""Which IdentityVerifier a deployment gets: Kinde when configured, else the development
identity, which production refuses."""

from __future__ import annotations

from datetime import timedelta

import httpx

from adapters.kinde.development import DEVELOPMENT_USER, PRODUCTION, DevelopmentIdentity
from adapters.kinde.verifier import KindeTokenVerifier
from application.errors import ConfigurationError
from application.identity import IdentityVerifier
from application.ports import Clock


def identity_verifier(
    environment: str,
    issuer: str | None,
    audience: str | None,
    clock: Clock,
    http: httpx.AsyncClient | None = None,
    development_user: str = DEVELOPMENT_USER,
    jwks_max_age: timedelta = timedelta(seconds=300),
    legacy_subjects: frozenset[str] = frozenset(),
) -> IdentityVerifier:
    if issuer:
        if not audience:
            raise ConfigurationError("KINDE_AUDIENCE must be set with KINDE_DOMAIN: tokens are checked for it")
        return KindeTokenVerifier(issuer, audience, clock, http, jwks_max_age=jwks_max_age,
                                  legacy_subjects=legacy_subjects)
    if environment == PRODUCTION:
        raise ConfigurationError("SNIPER_ENV=production needs KINDE_DOMAIN: the development identity is refused")
    return DevelopmentIdentity(environment, user_id=development_user)
