"""The conventions a client generator and a reader of the API expect (issue 17): every operation
has a unique operationId, tags declared by the document and a summary; every error answers an
RFC 9457 problem (`application/problem+json`: type, title, status, detail), as the document
says, with the stable `error` code and `error_id` as extension members."""

from __future__ import annotations

from collections import Counter
from http import HTTPStatus

import pytest
from litestar import get, route
from litestar.testing import AsyncTestClient

from entrypoints.http.document import operation_id, resource_tag
from tests.http.conftest import make_app
from tests.http.support import ALICE, auth

METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
PROBLEM = {"type", "title", "status", "detail", "error", "error_id"}
PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture
async def world():
    app, container = make_app()
    async with AsyncTestClient(app=app) as client:
        document = (await client.get("/schema/openapi.json")).json()
        yield client, document
    await container.close()


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()
            if method in METHODS]


async def test_every_operation_has_a_unique_id_declared_tags_and_a_summary(world) -> None:
    _, document = world
    ops = operations(document)
    assert len(ops) >= 30
    ids = Counter(op.get("operationId") for _, _, op in ops)
    assert None not in ids and [i for i, n in ids.items() if n > 1] == []
    declared = {tag["name"] for tag in document.get("tags", [])}
    for method, path, op in ops:
        assert op.get("tags") and set(op["tags"]) <= declared, (method, path, op.get("tags"))
        assert (op.get("summary") or "").strip(), f"{method.upper()} {path} has no summary: give its route one"
    assert {op["operationId"] for _, _, op in ops} >= {"listTargets", "createTarget", "getTarget", "health"}
    tags = {(method, path): op["tags"] for method, path, op in ops}
    assert tags[("get", "/api/v1/targets/{target_id}")] == ["targets"] and tags[("get", "/health")] == ["probes"]


async def test_every_api_error_is_documented_as_a_problem(world) -> None:
    _, document = world
    schema = document["components"]["schemas"]["Problem"]
    assert set(schema["required"]) == PROBLEM - {"error_id"}
    checked = 0
    for method, path, op in operations(document):
        if not path.startswith("/api/v1/"):
            continue
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                assert list(answer["content"]) == ["application/problem+json"], (method, path, status)
                assert answer["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}
                checked += 1
    assert checked >= 100


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), [
    ("GET", "/api/v1/targets/t-nope", "alice", None, 404, "not_found"),
    ("GET", "/api/v1/portfolio", None, None, 401, "unauthorized"),
    ("POST", "/api/v1/targets", "alice", b"{not json", 400, "bad_request"),
    ("POST", "/api/v1/targets", "alice", b'{"symbol": "NEWUSDT", "launch_at": "2000-01-01T00:00:00Z", '
                                         b'"quote_amount": "10"}', 422, "invalid_value"),
    ("DELETE", "/health", None, None, 405, "method_not_allowed"),
])
async def test_errors_answer_problem_details(world, method, path, headers, body, status, code) -> None:  # noqa: ANN001
    client, _ = world
    sent = {**(auth(ALICE) if headers else {}), "Content-Type": "application/json"}
    r = await client.request(method, path, headers=sent, content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert set(problem) == PROBLEM
    assert (problem["type"], problem["title"], problem["status"], problem["error"]) == (
        "about:blank", HTTPStatus(status).phrase, status, code)
    assert problem["detail"] and problem["error_id"] is None


def test_operation_ids_are_the_handlers_names_in_camel_case() -> None:
    @get("/x")
    async def list_open_targets() -> None: ...

    @route("/y", http_method=["GET", "POST"])
    async def read_or_write() -> None: ...

    assert operation_id(list_open_targets, "GET", []) == "listOpenTargets"
    assert [operation_id(read_or_write, m, []) for m in ("GET", "POST")] == ["getReadOrWrite", "postReadOrWrite"]
    assert [resource_tag(p) for p in ("/api/v1/targets/{target_id}/history", "/health", "/api/v1/pnl/daily")] == [
        "targets", "health", "pnl"]


async def test_the_document_passes_an_openapi_lint(world) -> None:
    """openapi-spec-validator checks the document against the OpenAPI 3.1 specification's own
    schema and rules (references resolve, parameters are well formed, ...): 0 errors."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    _, document = world
    assert document["openapi"].startswith("3.1")
    try:
        validate(document)
    except OpenAPIValidationError as exc:  # pragma: no cover - the message is the finding
        pytest.fail(f"the OpenAPI document does not validate: {exc}")
