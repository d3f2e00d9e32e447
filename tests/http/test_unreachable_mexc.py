"""Issue 12: `POST /api/v1/credentials/test` with no way to MEXC says that MEXC cannot be
reached and why (DNS, refused, timeout), never "MEXC refused the check". The real credential
checker (entrypoints/keys.py) on MEXCs that cannot be reached, none of them real (see
tests/entrypoints/test_unreachable_mexc.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from dishka import Scope, provide
from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from application.credentials import CredentialChecker
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from entrypoints.keys import credential_checker
from tests.entrypoints.test_unreachable_mexc import CAUSES, unreachable  # noqa: F401 - the fixture
from tests.http.conftest import api_settings
from tests.http.support import ALICE, FakeSecurity, auth


@pytest.fixture
async def client(unreachable: tuple[str, str]) -> AsyncIterator[AsyncTestClient]:  # noqa: F811
    settings = api_settings(MEXC_BASE_URL=unreachable[0])

    class RealChecker(FakeSecurity):
        @provide(scope=Scope.APP)
        def checker(self) -> CredentialChecker:
            return credential_checker(settings)

    container = http_container(settings, SystemClock(), RealChecker())
    app = create_app(container, settings)
    try:
        async with AsyncTestClient(app=app, timeout=120) as test_client:
            yield test_client
    finally:
        await container.close()


@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
async def test_credentials_test_says_mexc_cannot_be_reached_and_why(client: AsyncTestClient,
                                                                    unreachable: tuple[str, str]) -> None:  # noqa: F811
    r = await client.post("/api/v1/credentials/test", headers=auth(ALICE),
                          json={"api_key": "mx0vDummyKey000000", "secret_key": "DummySecret0000000000"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is False and body["can_trade"] is False
    assert body["detail"].startswith("the keys could not be checked: "), body
    assert unreachable[1] in body["detail"], body
    assert "refused the check" not in body["detail"] and "DummySecret" not in r.text

