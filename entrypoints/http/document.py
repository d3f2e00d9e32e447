"""The OpenAPI document made exact: it says what the server enforces, no more and no less.

Litestar's generator leaves gaps, closed here on the generated document once, before it is first
served:
- the request bodies' schemas are msgspec's own (`msgspec.json.schema_components`), generated from
  the very types msgspec validates with: Litestar drops constraints (the patterns of list items) and
  never says that unknown fields are refused (`forbid_unknown_fields`: `additionalProperties: false`).
  A rule across fields that a route checks is stated by the struct's `__json_schema_extra__`;
- a body the handler gives a default is optional: `requestBody.required` is false (Litestar always
  writes true);
- numeric bounds are written as the whole numbers they are (Litestar writes some as floats:
  `le=2**62` became 4.611686018427388e+18, a different number);
- every operation has a tag: a route that names none is tagged with its resource, the first
  segment of its path under /api/v1 (`/api/v1/targets/{target_id}` -> `targets`), and the
  document lists the tags. Operation ids are the handlers' names in camelCase (`operation_id`,
  given to Litestar's OpenAPIConfig, which refuses two alike). The summary is each route's
  own (tests/http/test_openapi_conventions.py fails for a route without one);
- every tag has a description (`TAG_DESCRIPTIONS`);
- a route that answers without a token (guards.PUBLIC_PATHS) says so: `security: []`. Litestar
  writes nothing for an empty list, which leaves "no authentication" unsaid. Redocly's lint
  (tests/http/test_openapi_lint.py) reads both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Operation, RequestBody, Schema, Tag
from litestar.routes import HTTPRoute
from litestar.types import Method

from entrypoints.http import schemas
from entrypoints.http.guards import PUBLIC_PATHS

_BOUNDS = ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum")
_API_PREFIX = "/api/v1/"
_PUBLIC = re.compile("|".join(PUBLIC_PATHS))

TAG_DESCRIPTIONS = {
    "agents": "The worker agents and their last heartbeats.",
    "audit": "Your audit trail: every event recorded for you.",
    "balances": "The balances of the account you trade on (MEXC with your keys, or paper).",
    "calendar": "Listings announced but not launched yet.",
    "cockpit": "Backtests of exit strategies and the advisory analysis of a listing.",
    "credentials": "Your MEXC API keys: stored sealed, answered as a hint only.",
    "emergency-stop": "Halt and resume your trading.",
    "exit-strategies": "Preset exit strategies and your own.",
    "listings": "New listings the calendar announced.",
    "me": "The signed-in user.",
    "notifications": "Where and what you are notified, and the messages that could not be delivered.",
    "pnl": "Realised profit and loss.",
    "portfolio": "Your positions and totals at a glance.",
    "positions": "What your filled targets hold, and closing them.",
    "probes": "Liveness and readiness of the process, without a token.",
    "settings": "Your trading settings and risk profile.",
    "sign-in": "The browser sign-in (authorization code with PKCE) that answers a bearer token.",
    "status": "Halted or not, holdings, today's result and the agents' health in one answer.",
    "targets": "Snipe targets: buy a new listing at its launch.",
    "telegram": "Linking your Telegram chats to the bot.",
    "trades": "Your fills.",
}


def operation_id(handler: HTTPRouteHandler, method: Method, path: list[Any]) -> str:
    """The handler's name in camelCase (`list_targets` -> `listTargets`); the method first when
    one handler answers several. OpenAPIConfig's `operation_id_creator`."""
    first, *rest = handler.handler_name.strip("_").split("_")
    name = first + "".join(word.capitalize() for word in rest)
    if len(handler.http_methods) > 1:
        name = str(method).lower() + name[:1].upper() + name[1:]
    return name


def resource_tag(path: str) -> str:
    """`/api/v1/targets/{target_id}/history` -> `targets`; outside /api/v1, the first segment."""
    return path.removeprefix(_API_PREFIX).strip("/").split("/")[0] or "root"


def make_exact(app: Litestar) -> None:
    """Amends `app`'s document in place."""
    document = app.openapi_schema
    requests = [
        s for s in vars(schemas).values()
        if isinstance(s, type) and issubclass(s, msgspec.Struct) and s.__struct_config__.forbid_unknown_fields
    ]
    _, exact = msgspec.json.schema_components(requests, ref_template="#/components/schemas/{name}")
    for struct in requests:
        exact[struct.__name__].update(getattr(struct, "__json_schema_extra__", {}))
    components = document.components.schemas or {}
    for name, schema in exact.items():
        if name in components:
            components[name] = schema  # a plain dict serialises as it is
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or document.paths is None or route.path_format not in document.paths:
            continue
        item = document.paths[route.path_format]
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                if not operation.tags:
                    operation.tags = [resource_tag(route.path_format)]
                if operation.security is None and _PUBLIC.match(route.path_format):
                    operation.security = []
                if data is not None and data.has_default and isinstance(operation.request_body, RequestBody):
                    operation.request_body.required = False
    used = {tag for _, _, operation in operations(document) for tag in operation.tags or ()}
    declared = {tag.name for tag in document.tags or ()}
    document.tags = [*(document.tags or ()), *(Tag(name=name) for name in sorted(used - declared))]
    for tag in document.tags:
        tag.description = tag.description or TAG_DESCRIPTIONS.get(tag.name)
    for schema in _schemas(document):
        for bound in _BOUNDS:
            value = getattr(schema, bound)
            if isinstance(value, float) and value.is_integer():
                setattr(schema, bound, int(value))


def operations(document: Any) -> Iterator[tuple[str, str, Operation]]:
    """(method, path, operation) of every operation of the document."""
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "patch", "delete", "head", "options", "trace"):
            operation = getattr(item, method, None)
            if operation is not None:
                yield method, path, operation


def _schemas(node: Any) -> Iterator[Schema]:
    if isinstance(node, Schema):
        yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            yield from _schemas(getattr(node, field.name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _schemas(value)
