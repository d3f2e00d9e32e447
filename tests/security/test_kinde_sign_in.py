"""Sign-in: the authorization-code flow with PKCE against a local fake Kinde; the development
identity and who may have it."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.clock import ManualClock, SystemClock
from adapters.kinde.development import DevelopmentIdentity
from adapters.kinde.factory import identity_verifier
from adapters.kinde.oauth import KindeSignIn, SignInFailed
from adapters.kinde.verifier import KindeTokenVerifier
from application.errors import ConfigurationError
from application.identity import Identity, InvalidToken
from tests.security.fake_kinde import AUDIENCE, CLIENT_ID, CLIENT_SECRET, FakeKinde
from tests.security.support import T0

REDIRECT = "http://127.0.0.1:8000/auth/callback"
TLS = ssl.create_default_context()


@pytest.fixture
async def sign_in(kinde: FakeKinde) -> AsyncIterator[KindeSignIn]:
    async with httpx.AsyncClient(verify=TLS) as http:
        verifier = KindeTokenVerifier(kinde.issuer, AUDIENCE, SystemClock(), http)
        yield KindeSignIn(kinde.issuer, CLIENT_ID, CLIENT_SECRET, REDIRECT, verifier, audience=AUDIENCE)


async def test_the_whole_flow(sign_in: KindeSignIn, kinde: FakeKinde, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    login = sign_in.start()
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.url).query).items()}
    assert login.url.startswith(f"{kinde.issuer}/oauth2/auth?")
    assert query["state"] == login.state and len(login.state) >= 32
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] != login.code_verifier
    assert query["redirect_uri"] == REDIRECT and query["audience"] == AUDIENCE
    assert "openid" in query["scope"].split()
    assert login.code_verifier not in login.url and CLIENT_SECRET not in login.url

    code, state = kinde.authorize(login.url, subject="kp_carol")
    signed_in = await sign_in.finish(code, state, login)
    assert signed_in.identity == Identity("kinde:kp_carol", "kp_carol@example.test")
    assert signed_in.expires_in == 3600 and signed_in.refresh_token
    exchanged = kinde.token_requests[-1]
    assert exchanged["code_verifier"] == login.code_verifier and exchanged["redirect_uri"] == REDIRECT
    for text in (repr(signed_in), repr(login), repr(sign_in), caplog.text):
        assert signed_in.access_token not in text and login.code_verifier not in text and CLIENT_SECRET not in text


async def test_a_forged_state_is_refused_before_any_exchange(sign_in: KindeSignIn, kinde: FakeKinde) -> None:
    login = sign_in.start()
    code, _ = kinde.authorize(login.url)
    with pytest.raises(SignInFailed, match="state does not match"):
        await sign_in.finish(code, "attacker-state", login)
    with pytest.raises(SignInFailed, match="state does not match"):
        await sign_in.finish(code, "", login)
    assert kinde.token_requests == []


async def test_a_code_from_another_login_fails_pkce(sign_in: KindeSignIn, kinde: FakeKinde) -> None:
    victim, attacker = sign_in.start(), sign_in.start()
    code, _ = kinde.authorize(victim.url)
    with pytest.raises(SignInFailed, match="Kinde refused the sign-in: invalid_grant"):
        await sign_in.finish(code, attacker.state, attacker)


async def test_a_code_works_once(sign_in: KindeSignIn, kinde: FakeKinde) -> None:
    login = sign_in.start()
    code, state = kinde.authorize(login.url)
    await sign_in.finish(code, state, login)
    with pytest.raises(SignInFailed, match="invalid_grant"):
        await sign_in.finish(code, state, login)


async def test_a_wrong_client_secret_is_refused(kinde: FakeKinde) -> None:
    verifier = KindeTokenVerifier(kinde.issuer, AUDIENCE, SystemClock())
    bad = KindeSignIn(kinde.issuer, CLIENT_ID, "wrong-secret", REDIRECT, verifier)
    login = bad.start()
    code, state = kinde.authorize(login.url)
    with pytest.raises(SignInFailed, match="invalid_client") as failed:
        await bad.finish(code, state, login)
    assert "wrong-secret" not in str(failed.value)
    await verifier.aclose()


async def test_a_token_for_another_audience_fails_the_sign_in(kinde: FakeKinde) -> None:
    async with httpx.AsyncClient(verify=TLS) as http:
        verifier = KindeTokenVerifier(kinde.issuer, "https://another.api", SystemClock(), http)
        other = KindeSignIn(kinde.issuer, CLIENT_ID, CLIENT_SECRET, REDIRECT, verifier)
        login = other.start()
        code, state = kinde.authorize(login.url)
        with pytest.raises(SignInFailed, match="refused: wrong audience"):
            await other.finish(code, state, login)


async def test_kinde_down_is_a_clear_failure(sign_in: KindeSignIn, kinde: FakeKinde) -> None:
    login = sign_in.start()
    code, state = kinde.authorize(login.url)
    kinde.stop()
    with pytest.raises(SignInFailed, match="did not answer"):
        await sign_in.finish(code, state, login)


def test_logout_url(sign_in: KindeSignIn, kinde: FakeKinde) -> None:
    expected = f"{kinde.issuer}/logout?redirect=http%3A%2F%2F127.0.0.1%3A8000%2F"
    assert sign_in.logout_url("http://127.0.0.1:8000/") == expected


# --- the development identity ----------------------------------------------------------------

async def test_the_development_identity_is_loud_and_fixed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    dev = DevelopmentIdentity("development")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "DEVELOPMENT IDENTITY" in caplog.text
    assert await dev.verify("dev") == Identity("local", None, development=True)
    for token in ("", "Dev", "dev ", "eyJhbGciOiJSUzI1NiJ9.e30.x"):
        with pytest.raises(InvalidToken, match="not the development token"):
            await dev.verify(token)


def test_production_refuses_the_development_identity() -> None:
    with pytest.raises(ConfigurationError, match="refused when SNIPER_ENV=production"):
        DevelopmentIdentity("production")
    clock = ManualClock(T0)
    with pytest.raises(ConfigurationError, match="production needs KINDE_DOMAIN"):
        identity_verifier("production", None, None, clock)
    with pytest.raises(ConfigurationError, match="KINDE_AUDIENCE"):
        identity_verifier("production", "https://x.kinde.com", None, clock)
    assert isinstance(identity_verifier("production", "https://x.kinde.com", AUDIENCE, clock), KindeTokenVerifier)
    assert isinstance(identity_verifier("development", None, None, clock), DevelopmentIdentity)
    assert isinstance(identity_verifier("development", "https://x.kinde.com", AUDIENCE, clock), KindeTokenVerifier)
