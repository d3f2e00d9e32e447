"""The Litestar application: routes, authentication, limits, CORS, headers, errors, OpenAPI."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from dishka import AsyncContainer
from dishka.integrations.litestar import setup_dishka
from litestar import Litestar, Request, get
from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, License, SecurityScheme
from litestar.response import Response
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from adapters.telemetry.otel import OtelTelemetry
from application.ports import EventFanout, EventStore, LockService
from entrypoints.config import Settings
from entrypoints.http.auth import auth_router
from entrypoints.http.backtests import backtests_router
from entrypoints.http.bodies import ApiRequest
from entrypoints.http.cache import CachedReadModels
from entrypoints.http.dashboard import dashboard_router
from entrypoints.http.document import make_exact, operation_id
from entrypoints.http.errors import handle_exception
from entrypoints.http.guards import PUBLIC_PATHS, BearerAuthentication, allow_header, security_headers, traced
from entrypoints.http.routes import api_router
from entrypoints.http.runtime import ReadinessProbe, background, follow_projections, relay_events
from entrypoints.http.schemas import HealthOut, ReadinessOut
from entrypoints.http.stream import OpenStreams, stream
from entrypoints.logs import package_version

log = logging.getLogger("sniper.http")

def _api_version() -> str:
    """info.version of the OpenAPI document: the installed package's version."""
    installed = package_version()
    return installed if installed[0].isdigit() else "0+source"


API_VERSION = _api_version()


@get("/health", tags=["probes"], summary="The process answers", include_in_schema=True)
async def health() -> HealthOut:
    return HealthOut("ok")


@get("/metrics", tags=["probes"], include_in_schema=False, media_type="text/plain")
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text (counters, histograms, gauges of this process); unauthenticated, like the
    probes: it holds counts, never user data."""
    telemetry: OtelTelemetry = await request.app.state.dishka_container.get(OtelTelemetry)
    body, content_type = telemetry.render_metrics()
    return Response(body, media_type=content_type)


@get("/ready", tags=["probes"], summary="The database (schema current) and Redis, when configured, answer",
     responses={503: ResponseSpec(data_container=ReadinessOut, description="Not ready: see the failing check")})
async def ready(request: Request[Any, Any, Any]) -> Response[ReadinessOut]:
    probe: ReadinessProbe = await request.app.state.dishka_container.get(ReadinessProbe)
    checks = await probe.checks()
    ok = all(c.ok for c in checks)
    return Response(ReadinessOut(ok, checks), status_code=200 if ok else HTTP_503_SERVICE_UNAVAILABLE)


def create_app(container: AsyncContainer, settings: Settings | None = None, run_background: bool = True) -> Litestar:
    """The API on `container` (see entrypoints/http/providers.py). With `run_background`, the
    app keeps the SQL projections current and relays recorded events to the live streams
    while it runs. The caller owns the container (closes it after the app stops). `settings`: the
    SNIPER_* limits of the API (rate, body size, streams, CORS, access log)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not run_background:
            yield
            return
        from adapters.projections import SqlProjector

        store = await container.get(EventStore)
        projector = await container.get(SqlProjector | None)
        fanout = await container.get(EventFanout)
        locks = await container.get(LockService)
        cached = await container.get(CachedReadModels | None)
        jobs = [lambda stop: relay_events(store, fanout, locks, stop)]
        if projector is not None:
            jobs.append(lambda stop: follow_projections(projector, stop))
        if cached is not None:
            jobs.append(cached.watch)
        async with background(*jobs):
            yield

    cors = None
    if settings.cors_origins:
        cors = CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )

    app = Litestar(
        route_handlers=[health, ready, metrics, api_router(), auth_router(), stream, dashboard_router(),
                        backtests_router()],
        middleware=[DefineMiddleware(BearerAuthentication, exclude=PUBLIC_PATHS)],
        exception_handlers={Exception: handle_exception},
        request_class=ApiRequest,
        request_max_body_size=settings.sniper_max_body_bytes,
        cors_config=cors,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="mexc-sniper API",
            version=API_VERSION,
            # No open-source licence is granted (the repository has none): all rights reserved. SPDX's
            # `LicenseRef-` prefix names a licence outside its list.
            license=License(name="Proprietary", identifier="LicenseRef-Proprietary"),
            description=(
                "Every /api/v1 route needs `Authorization: Bearer <token>` and sees only the signed-in user's "
                "resources. Amounts are decimal strings. Errors answer RFC 9457 problem details "
                "(application/problem+json: type, title, status, detail, and a stable `error` code)."
            ),
            path="/schema",
            # The document only, no HTML viewer: the viewers Litestar offers load their script from a
            # public CDN, a third-party script on a page that holds a bearer token (and a blank page
            # offline). Any OpenAPI viewer can open /schema/openapi.json (README, "The HTTP API").
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            use_handler_docstrings=True,
            operation_id_creator=operation_id,
        ),
        debug=False,
        # Litestar's default takes over the root logger: the process's log is entrypoints/logs.py's.
        logging_config=None,
    )
    app.state.rate_limit_per_minute = settings.sniper_rate_limit_per_minute
    app.state.open_streams = OpenStreams(settings.sniper_max_streams_per_user, settings.sniper_max_streams)
    setup_dishka(container, app)
    make_exact(app)
    methods = ("get", "put", "post", "patch", "delete")

    def openapi_paths() -> dict[str, list[str]]:
        document = app.openapi_schema.to_schema()
        return {path: [m for m in methods if m in item] for path, item in document["paths"].items()}

    app.asgi_handler = traced(security_headers(allow_header(app.asgi_handler, openapi_paths)), container,
                              log_requests=settings.sniper_access_log)
    return app
