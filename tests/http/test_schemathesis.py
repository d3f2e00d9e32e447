"""Schemathesis against the app's own OpenAPI document, in process (ASGI), signed in:
no operation answers 5xx, and every answer matches the document (status, headers, body)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from application.ports import EventStore
from entrypoints.config import HttpSettings
from tests.http.conftest import make_app
from tests.http.support import ALICE, auth, seed_position

APP, CONTAINER = make_app(http=HttpSettings(rate_limit_per_minute=0), run_background=False)
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", APP, config=SchemathesisConfig())


@pytest.fixture(scope="module", autouse=True)
def seeded():
    import asyncio

    async def seed() -> None:
        store = await CONTAINER.get(EventStore)
        await seed_position(store, ALICE, "FUZZ", datetime.now(UTC) - timedelta(minutes=1))

    asyncio.run(seed())
    yield


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_schema_violation(case) -> None:  # noqa: ANN001
    # Every check but two about what the API should refuse, not how it answers:
    # - "schema-valid data must be accepted": the domain's rules (take-profit shares at most 100%,
    #   a stop-loss above 0%, a launch still ahead...) are not JSON Schema; the API answers 422.
    # - "schema-violating data must be rejected": unknown query parameters are ignored, as HTTP
    #   APIs commonly do (the document does not forbid them either).
    # Negative data is still generated: those answers must be 4xx, never 5xx, and match the document.
    case.call_and_validate(headers=auth(ALICE), excluded_checks=[positive_data_acceptance, negative_data_rejection])
