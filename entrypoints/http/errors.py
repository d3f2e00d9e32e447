"""The one translation of errors into HTTP answers: RFC 9457 problem details, never a traceback.

Every error answers `application/problem+json` with `type` (about:blank), `title` (the status's
reason phrase), `status` and `detail`, and two extension members: `error`, a stable code per
status, and `error_id` (schemas.Problem). Errors of the domain and the application say what the
caller did wrong, so their message is the detail. Anything unexpected answers a generic 500 with
an id, and the traceback goes to the log under that id only.

Litestar's ProblemDetailsPlugin is not used: it maps exception types to problems without the
request, and the 5xx log line names the method and path; one handler here maps every exception.
"""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from application.errors import (
    AccountUnavailable,
    ApplicationError,
    ConcurrencyConflict,
    ExchangeError,
    InvalidInput,
    ListingFeedUnavailable,
    NotFound,
    SubscriptionLost,
)
from application.use_cases.positions import PositionNotClosed
from application.use_cases.queries import BalancesUnavailable
from application.use_cases.targets import TargetAlreadyExists
from domain.errors import DomainError, EmergencyStopActive, InvalidTransition
from domain.trader import ExitStrategyInUse
from entrypoints.http.schemas import Problem

log = logging.getLogger("sniper.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid_value", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}

_DESCRIPTIONS = {
    400: "The request is malformed (a field is missing, of the wrong type or out of range)",
    401: "No valid bearer token",
    403: "Not allowed for this user",
    404: "No such resource for this user",
    409: "The resource is not in a state that allows this",
    413: "The request body is too large",
    422: "A value breaks a rule of the domain",
    429: "Too many requests for this user: retry after Retry-After seconds",
    503: "A service the API depends on is unavailable",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of the error answers a route can give."""
    return {
        code: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS[code], generate_examples=False,
                           media_type=PROBLEM_MEDIA_TYPE)
        for code in codes
    }


def problem(status: int, detail: str, error_id: str | None = None) -> Problem:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = f"HTTP {status}"
    return Problem("about:blank", title, status, detail, _STATUS_CODES.get(status, f"http_{status}"), error_id)


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None, error_id: str | None = None
) -> Response:
    return Response(problem(status, detail, error_id), status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=headers)


def _validation_detail(exc: ValidationException) -> str:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            where = item.get("key") or item.get("source") or ""
            message = str(item.get("message", "")).strip()
            if where == "data" and message == "'data'":  # Litestar's KeyError for a request without a body
                message = "a JSON body is required"
            problems.append(f"{where}: {message}" if where else message)
    if problems:
        return "; ".join(problems)[:1000]
    return "the request does not match the expected shape"


def _http_detail(exc: HTTPException) -> str:
    if isinstance(exc, ValidationException):
        return _validation_detail(exc)
    return str(exc.detail)[:1000]


_UNAVAILABLE = (DBAPIError, DisconnectionError, PoolTimeout, RedisError, ConnectionError, TimeoutError)


def _translate(exc: Exception) -> tuple[int, str]:
    match exc:
        case NotFound():
            return 404, str(exc)
        case InvalidInput():
            return 400, str(exc)
        case TargetAlreadyExists() | ConcurrencyConflict() | InvalidTransition() | ExitStrategyInUse():
            return 409, str(exc)
        case EmergencyStopActive():
            return 409, str(exc)
        case AccountUnavailable() | PositionNotClosed():  # no account for it here; the sell refused
            return 409, str(exc)
        case BalancesUnavailable():  # MEXC could not be asked: the reason, in one line
            return 503, str(exc)
        case DomainError():
            return 422, str(exc)
        case ExchangeError():
            return 503, f"the exchange did not accept the call ({exc.code}); try again later"
        case ListingFeedUnavailable() | SubscriptionLost():
            return 503, "a live feed is unavailable; try again"
        case ApplicationError():
            return 422, str(exc)
    raise LookupError


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status >= 500:
            return _internal(request, exc)
        return error_response(status, _http_detail(exc), headers=exc.headers)
    try:
        status, detail = _translate(exc)
    except LookupError:
        pass
    else:
        return error_response(status, detail[:1000])
    if isinstance(exc, _UNAVAILABLE):
        error_id = secrets.token_hex(6)
        log.warning("service unavailable [%s] on %s %s: %r", error_id, request.method, request.url.path, exc)
        return error_response(503, "a service the API needs is unavailable; try again shortly", error_id=error_id)
    return _internal(request, exc)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response:
    error_id = secrets.token_hex(6)
    log.error("unexpected error [%s] on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error; quote {error_id} when reporting it", error_id=error_id)
