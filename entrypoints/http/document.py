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
  `le=2**62` became 4.611686018427388e+18, a different number).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import Operation, Schema
from litestar.routes import HTTPRoute

from entrypoints.http import schemas

_BOUNDS = ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum")


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
            components[name] = schema  # type: ignore[assignment]  # a plain dict serialises as it is
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or document.paths is None or route.path_format not in document.paths:
            continue
        item = document.paths[route.path_format]
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None or not data.has_default:
                continue
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is not None and operation.request_body is not None:
                    operation.request_body.required = False
    for schema in _schemas(document):
        for bound in _BOUNDS:
            value = getattr(schema, bound)
            if isinstance(value, float) and value.is_integer():
                setattr(schema, bound, int(value))


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
