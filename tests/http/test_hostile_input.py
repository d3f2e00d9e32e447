"""What an attacker can send at the HTTP edge: JSON nested a thousand levels deep, dates at the ends
of the calendar; and what the edge tells about itself: an OpenAPI document that says exactly what
the server enforces, and no page that loads anything from elsewhere."""

from __future__ import annotations

import logging
import re

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient, TestClient

from tests.http.conftest import make_app
from tests.http.support import ALICE, auth

DEEP = "[" * 1000 + "]" * 1000  # 2 KB; msgspec gives up past Python's recursion limit
NESTED_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


async def json_routes(client: AsyncTestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the document that takes a JSON body, path parameters filled in."""
    document = (await client.get("/schema/openapi.json")).json()
    routes = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get(
                "content", {}
            ):
                routes.append((method.upper(), re.sub(r"\{[^}]+\}", "mine", template)))
    return routes


async def test_json_nested_too_deeply_answers_400_and_logs_one_line(
    client: AsyncTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    routes = await json_routes(client)
    assert len(routes) >= 8  # settings, credentials (2), exit strategies, targets (3), emergency stop
    for body in (DEEP, NESTED_OBJECT):
        for method, path in routes:
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="sniper"):
                r = await client.request(method, path, content=body,
                                         headers={**auth(ALICE), "Content-Type": "application/json"})
            assert r.status_code == 400, (method, path, r.text)
            assert r.json()["error"] == "bad_request" and "nested too deeply" in r.json()["detail"]
            assert not [x for x in caplog.records if x.exc_info or x.levelno >= logging.ERROR], (method, path)
            lines = [x for x in caplog.records if "nested too deeply" in x.getMessage()]
            assert len(lines) == 1 and "\n" not in lines[0].getMessage(), (method, path)


def test_a_stream_sign_in_message_nested_too_deeply_closes_like_any_malformed_one() -> None:
    app, container = make_app()
    with TestClient(app=app) as client:
        for message in ('{"x":' + DEEP + ',"token":"tok-alice"}', DEEP):
            with client.websocket_connect("/api/v1/stream") as ws:
                ws.send_text(message)
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text(timeout=5)
            assert closed.value.code == 4401
        client.blocking_portal.call(container.close)


@pytest.mark.parametrize("query", ["to=0001-01-01", "from=0001-01-01", "from=9999-12-31", "to=1999-12-31",
                                   "from=2201-01-01&to=2201-01-02"])
async def test_a_day_outside_the_supported_range_answers_400_naming_it(client: AsyncTestClient, query: str) -> None:
    r = await client.get(f"/api/v1/pnl/daily?{query}", headers=auth(ALICE))
    assert r.status_code == 400, r.text
    assert "from 2000-01-01 to 2200-12-31" in r.json()["detail"]


async def test_the_ends_of_the_supported_range_are_accepted(client: AsyncTestClient) -> None:
    r = await client.get("/api/v1/pnl/daily?from=2000-01-01&to=2200-12-31", headers=auth(ALICE))
    assert r.status_code == 200 and r.json() == []
    for launch_at in ("2200-12-31T23:59:59+00:00", "2000-01-01T00:00:00-05:00"):
        r = await client.post("/api/v1/targets", headers=auth(ALICE),
                              json={"symbol": "ENDUSDT", "launch_at": launch_at, "quote_amount": "10"})
        # Past the edge: the domain's own rules (a launch ahead, but not too far) answer, not the range.
        assert r.status_code == 422 and "from 2000-01-01 to 2200-12-31" not in r.json()["detail"], r.text


@pytest.mark.parametrize("launch_at", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00Z",
                                       "2201-01-01T00:00:00+00:00"])
async def test_a_launch_time_outside_the_supported_range_answers_400_naming_it(
    client: AsyncTestClient, launch_at: str
) -> None:
    r = await client.post("/api/v1/targets", headers=auth(ALICE),
                          json={"symbol": "FARUSDT", "launch_at": launch_at, "quote_amount": "10"})
    assert r.status_code == 400, r.text
    assert "launch_at" in r.json()["detail"] and "from 2000-01-01 to 2200-12-31" in r.json()["detail"]


def _schemas_of(node: object) -> list[dict]:
    if isinstance(node, dict):
        return [node, *(s for v in node.values() for s in _schemas_of(v))]
    if isinstance(node, list):
        return [s for v in node for s in _schemas_of(v)]
    return []


async def test_the_document_says_what_the_server_enforces(client: AsyncTestClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    components = document["components"]["schemas"]
    request_bodies = [op["requestBody"] for item in document["paths"].values() for op in item.values()
                      if isinstance(op, dict) and "requestBody" in op]
    inputs = {ref.rsplit("/", 1)[1] for s in _schemas_of(request_bodies) if (ref := s.get("$ref"))}
    assert {"TargetIn", "CancelIn", "CredentialsTestIn", "SettingsBody", "ExitPlanBody", "StopIn"} <= inputs
    for name in inputs | {"RiskProfileBody", "TakeProfitBody"}:
        assert components[name].get("additionalProperties") is False, name  # unknown fields are refused
    paths = document["paths"]
    assert paths["/api/v1/targets/{target_id}/cancel"]["post"]["requestBody"]["required"] is False
    assert paths["/api/v1/credentials/test"]["post"]["requestBody"]["required"] is False
    assert paths["/api/v1/settings"]["put"]["requestBody"]["required"] is True
    for schema in _schemas_of(document):
        for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if bound in schema:  # every bound of this API is a whole number: written as one, never as a float
                assert isinstance(schema[bound], int), schema
    for listed in ("targets", "positions", "listings", "calendar", "trades", "audit"):  # paged, none unbounded
        parameters = {p["name"]: p for p in paths[f"/api/v1/{listed}"]["get"]["parameters"]}
        assert parameters["limit"]["schema"]["maximum"] == 500 and parameters["limit"]["schema"]["minimum"] == 1
        assert parameters["cursor"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,400}$"
    assert '"maximum":500' in (await client.get("/schema/openapi.json")).text.replace(" ", "")
    launch = components["TargetIn"]["properties"]["launch_at"]
    assert launch["format"] == "date-time" and launch["pattern"] == r"^(2[01][0-9]{2}|2200)-"


async def test_no_page_loads_anything_from_another_origin(client: AsyncTestClient) -> None:
    """The docs viewers loaded their script from a CDN: the API serves its document, no HTML viewer."""
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200 and document.json()["openapi"].startswith("3.")
    assert (await client.get("/schema/openapi.yaml")).status_code == 200
    paths = ["/schema", "/schema/", "/schema/swagger", "/schema/scalar", "/schema/redoc", "/schema/elements",
             "/schema/rapidoc", "/schema/oauth2-redirect.html", "/", "/nope", "/api/v1/auth/login",
             *(p for p in document.json()["paths"] if "{" not in p)]
    for path in paths:
        r = await client.get(path)
        text = r.text
        if "html" in r.headers.get("content-type", "") or "<html" in text.lower() or "<script" in text.lower():
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.IGNORECASE), path
            # The dashboard's page (/) loads its modules from its own origin only; no inline script anywhere.
            assert not re.search(r"""<script(?![^>]*\bsrc="/[a-z])""", text, re.IGNORECASE), path
        assert "cdn.jsdelivr.net" not in text and "unpkg.com" not in text, path
