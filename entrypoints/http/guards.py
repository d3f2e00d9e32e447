"""Who may call, how often, and what every answer carries: bearer-token authentication, the
per-user rate limit, and security headers."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dishka import AsyncContainer
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from application.identity import Identity, IdentityVerifier, InvalidToken
from application.ports import RequestCounter
from application.telemetry import Telemetry

access_log = logging.getLogger("sniper.http.access")

# Routes that answer without a token: probes, the OpenAPI document, the sign-in flow.
PUBLIC_PATHS = ["^/health$", "^/ready$", "^/metrics$", "^/schema", "^/api/v1/auth/", "^/api/v1/stream$",
                "^/$", "^/static/"]  # the dashboard page and its files hold no data: it signs in itself
PUBLIC_PATHS.append("^/api/v1/telegram/webhook$")  # Telegram's secret header authenticates it (telegram_routes.py)
RATE_WINDOW = timedelta(minutes=1)
_BEARER = re.compile(r"^Bearer[ ]+([^\s]{1,8192})$", re.IGNORECASE)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    match = _BEARER.match(header.strip())
    return match.group(1) if match else None


def _unauthorized(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": 'Bearer realm="sniper"'})


async def _dependency(connection: ASGIConnection[Any, Any, Any, Any], kind: type) -> Any:
    """An APP-scoped dependency from the container dishka attached to the connection."""
    return await connection.app.state.dishka_container.get(kind)


class BearerAuthentication(AbstractAuthenticationMiddleware):
    """`Authorization: Bearer <token>` → the caller's Identity (request.user), then one hit on
    the caller's rate counter. No or a refused token: 401 with WWW-Authenticate."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise _unauthorized("send 'Authorization: Bearer <token>'")
        verifier: IdentityVerifier = await _dependency(connection, IdentityVerifier)
        try:
            identity = await verifier.verify(token)
        except InvalidToken as exc:
            raise _unauthorized(f"bearer token refused: {exc}") from None
        await enforce_rate_limit(connection, identity)
        return AuthenticationResult(user=identity, auth=None)


async def enforce_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], identity: Identity) -> None:
    limit: int = connection.app.state.rate_limit_per_minute
    if limit <= 0:
        return
    counter: RequestCounter = await _dependency(connection, RequestCounter)
    result = await counter.hit(f"http:{identity.user_id}", RATE_WINDOW, limit)
    if not result.allowed:
        retry = max(1, math.ceil(result.retry_after.total_seconds()))
        raise TooManyRequestsException(
            detail=f"more than {limit} requests in a minute; retry after {retry} s",
            headers={"Retry-After": str(retry)},
        )


# Security headers. The API answers JSON (and the document as YAML): nothing may frame it, sniff it or
# cache it, and nothing it answers may load anything. The dashboard (/ and /static/) may load from its own
# origin only (dashboard_csp).
_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")


def _is_dashboard(path: str) -> bool:
    return path == "/" or path.startswith("/static/")


def dashboard_csp(scope: Scope) -> str:
    """The dashboard's policy: everything from this origin only, no inline script or style, no
    plugin, no frame, no form posted elsewhere. The live stream's ws:// or wss:// URL of this very
    host is named as well ('self' covers it in current browsers, not in every one)."""
    connect = "'self'"
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
    if _HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def security_headers(app: ASGIApp) -> ASGIApp:
    """Wraps the whole ASGI app, so error and not-found answers carry the headers too."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in _COMMON.items():
                    headers[name] = value
                headers["Content-Security-Policy"] = (
                    dashboard_csp(scope) if _is_dashboard(scope["path"]) else _API_CSP
                )
                headers["Cache-Control"] = "no-store"
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def traced(app: ASGIApp, container: AsyncContainer, log_requests: bool = True) -> ASGIApp:
    """One span per HTTP request (`http.request`: method, path, status), the root of whatever the
    request does, the request counter `sniper_http_requests_total{method,status}`, and (with
    `log_requests`) an access log line once the answer is sent: method, path, status, duration.
    The path is the raw one, still percent-encoded, and never the query: tokens, sign-in codes and
    the like travel there, and an encoded path cannot break the log line."""
    telemetry: Telemetry | None = None

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal telemetry
        if scope["type"] != ScopeType.HTTP:  # the enum member (a str, == "http"): the type checker narrows the scope
            await app(scope, receive, send)
            return
        if telemetry is None:
            found: Telemetry = await container.get(Telemetry)  # typed: dishka's get() of a Protocol is Any
            telemetry = found
        started = time.perf_counter()
        status = 500
        method = scope.get("method", "?")

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with telemetry.span("http.request", method=method, path=scope["path"][:200]):
            try:
                await app(scope, receive, send_noting_status)
            finally:
                telemetry.annotate(status=status)
                telemetry.count("sniper_http_requests_total", method=method, status=str(status))
                if log_requests and access_log.isEnabledFor(logging.INFO):
                    duration_ms = round((time.perf_counter() - started) * 1000, 1)
                    raw = scope.get("raw_path") or scope["path"].encode()
                    path = raw.partition(b"?")[0].decode("ascii", "backslashreplace")[:200]
                    # makeRecord + handle is log.info without findCaller's walk up the stack: a quarter of
                    # the line's cost, on every request, for a caller that is always this line.
                    access_log.handle(access_log.makeRecord(
                        access_log.name, logging.INFO, __file__, 0, "%s %s %s %.1f ms",
                        (method, path, status, duration_ms), None,
                        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
                    ))

    return wrapped


def allow_header(app: ASGIApp, paths: Callable[[], dict[str, list[str]]]) -> ASGIApp:
    """Answers a plain OPTIONS request's `Allow` with every method of the path. (Litestar 2.25
    lists only the first handler's method when several handlers share a path.) `paths` gives
    the OpenAPI document's path templates and their methods."""
    routes: list[tuple[re.Pattern[str], str]] = []

    def allowed(path: str) -> str | None:
        if not routes:
            for template, methods in paths().items():
                pattern = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")
                routes.append((pattern, ", ".join(sorted({m.upper() for m in methods} | {"OPTIONS"}))))
        return next((methods for pattern, methods in routes if pattern.match(path)), None)

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        methods = allowed(scope["path"])

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and methods is not None and message["status"] < 300:
                headers = MutableScopeHeaders.from_message(message)
                if "allow" in headers:
                    headers["Allow"] = methods
            await send(message)

        await app(scope, receive, send_with_allow)

    return wrapped
