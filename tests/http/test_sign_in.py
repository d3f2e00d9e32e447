"""The browser sign-in through the API against a local fake Kinde: login redirects with PKCE,
the callback answers a token the API accepts, and a callback cannot be replayed or completed
in another browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from dishka import Scope, provide
from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from adapters.kinde.oauth import KindeSignIn
from adapters.kinde.verifier import KindeTokenVerifier
from application.identity import IdentityVerifier
from entrypoints.http import create_app
from entrypoints.http.auth import STATE_COOKIE, SignInFlow
from entrypoints.http.providers import http_container
from tests.http.conftest import api_settings
from tests.http.support import FakeSecurity
from tests.security.fake_kinde import AUDIENCE, CLIENT_ID, CLIENT_SECRET, FakeKinde

REDIRECT = "http://127.0.0.1:8080/api/v1/auth/callback"


class KindeSecurity(FakeSecurity):
    """FakeSecurity with a real verifier and sign-in flow on the fake Kinde."""

    def __init__(self, issuer: str, http: httpx.AsyncClient) -> None:
        super().__init__()
        self.verifier_ = KindeTokenVerifier(issuer, AUDIENCE, SystemClock(), http)
        self.flow = SignInFlow(
            KindeSignIn(issuer, CLIENT_ID, CLIENT_SECRET, REDIRECT, self.verifier_, audience=AUDIENCE)
        )

    @provide(scope=Scope.APP)
    def verifier(self) -> IdentityVerifier:
        return self.verifier_

    @provide(scope=Scope.APP)
    def sign_in(self) -> SignInFlow:
        return self.flow


@pytest.fixture
async def app_on_kinde(kinde: FakeKinde) -> AsyncIterator:
    async with httpx.AsyncClient() as http:
        container = http_container(api_settings(), SystemClock(), KindeSecurity(kinde.issuer, http))
        try:
            yield create_app(container)
        finally:
            await container.close()


async def test_the_browser_signs_in_and_the_token_opens_the_api(app_on_kinde, kinde: FakeKinde) -> None:  # noqa: ANN001
    async with AsyncTestClient(app=app_on_kinde) as browser:
        started = await browser.get("/api/v1/auth/login", follow_redirects=False)
        assert started.status_code == 302
        location = started.headers["location"]
        assert location.startswith(f"{kinde.issuer}/oauth2/auth?") and "code_challenge=" in location
        assert STATE_COOKIE in started.headers["set-cookie"] and "httponly" in started.headers["set-cookie"].lower()
        code, state = kinde.authorize(location, subject="kp_dave")

        done = await browser.get("/api/v1/auth/callback", params={"code": code, "state": state})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["user_id"] == "kinde:kp_dave" and body["token_type"] == "Bearer"
        assert done.headers["cache-control"] == "no-store"
        me = await browser.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["user_id"] == "kinde:kp_dave"

        replay = await browser.get("/api/v1/auth/callback", params={"code": code, "state": state})
        assert replay.status_code == 400  # one callback per login


async def test_a_callback_from_another_browser_is_refused_before_any_exchange(app_on_kinde, kinde) -> None:  # noqa: ANN001
    async with AsyncTestClient(app=app_on_kinde) as victim, AsyncTestClient(app=app_on_kinde) as attacker:
        started = await attacker.get("/api/v1/auth/login", follow_redirects=False)
        code, state = kinde.authorize(started.headers["location"], subject="kp_mallory")
        answer = await victim.get("/api/v1/auth/callback", params={"code": code, "state": state})
        assert answer.status_code == 400 and "not started in this browser" in answer.json()["detail"]
        assert kinde.token_requests == []


async def test_without_kinde_settings_sign_in_says_so(client) -> None:  # noqa: ANN001
    answer = await client.get("/api/v1/auth/login", follow_redirects=False)
    assert answer.status_code == 404 and "KINDE_CLIENT_ID" in answer.json()["detail"]


async def test_a_browser_is_sent_back_to_the_dashboard_with_the_token_in_the_fragment(  # noqa: ANN001
        app_on_kinde, kinde: FakeKinde) -> None:
    async with AsyncTestClient(app=app_on_kinde) as browser:
        started = await browser.get("/api/v1/auth/login", follow_redirects=False)
        code, state = kinde.authorize(started.headers["location"], subject="kp_erin")
        browser_accept = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        done = await browser.get("/api/v1/auth/callback", params={"code": code, "state": state},
                                 headers=browser_accept, follow_redirects=False)
        assert done.status_code == 303, done.text
        location = done.headers["location"]
        assert location.startswith("/#access_token=")  # a fragment: never sent to a server
        token = location.removeprefix("/#access_token=")
        me = await browser.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user_id"] == "kinde:kp_erin"
