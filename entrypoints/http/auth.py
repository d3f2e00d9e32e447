"""Sign-in through Kinde in a browser: the authorization-code flow with PKCE.

GET /api/v1/auth/login redirects to Kinde. What the callback needs (the PKCE code verifier) stays
on the server, in the cache under the login's random state, for ten minutes; the browser gets
the state in an HttpOnly cookie, so a callback only completes in the browser that started it (no
login CSRF). GET /api/v1/auth/callback exchanges the code, verifies the access token like any
API token, and answers it: the client sends it as `Authorization: Bearer` from then on. A browser
(Accept: text/html) is sent back to the dashboard at `/` with the token in the URL's fragment.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from dishka import FromDishka
from dishka.integrations.litestar import DishkaRouter
from litestar import Request, get
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect, Response

from adapters.kinde.oauth import KindeSignIn, LoginRequest, SignInFailed
from application.ports import Cache
from entrypoints.http.errors import error_response, error_responses

STATE_COOKIE = "sniper_signin_state"
PENDING_FOR = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SignInFlow:
    """The browser sign-in, or None when KINDE_CLIENT_ID/_SECRET/_REDIRECT_URL are not set."""

    kinde: KindeSignIn | None


class SignedInOut(msgspec.Struct):
    user_id: str
    email: str | None
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - an OAuth token type, not a secret
    expires_in: int | None = None


class _Pending(msgspec.Struct):
    url: str
    state: str
    code_verifier: str


def _pending_key(state: str) -> str:
    return f"signin:{state}"


NOT_CONFIGURED = "sign-in is not configured: set KINDE_CLIENT_ID, KINDE_CLIENT_SECRET and KINDE_REDIRECT_URL"


@get("/login", summary="Start the sign-in: redirects to Kinde", status_code=302, responses=error_responses(404))
async def login(flow: FromDishka[SignInFlow], cache: FromDishka[Cache]) -> Response[Any]:
    if flow.kinde is None:
        return error_response(404, NOT_CONFIGURED)
    started = flow.kinde.start()
    pending = _Pending(started.url, started.state, started.code_verifier)
    await cache.set(_pending_key(started.state), msgspec.json.encode(pending), PENDING_FOR)
    cookie = Cookie(key=STATE_COOKIE, value=started.state, max_age=int(PENDING_FOR.total_seconds()), httponly=True,
                    samesite="lax", secure=flow.kinde.redirect_url.startswith("https://"), path="/api/v1/auth")
    return Redirect(started.url, status_code=302, cookies=[cookie])


@get("/callback", summary="Finish the sign-in: Kinde redirects here; answers the access token",
     responses=error_responses(400, 404))
async def callback(
    request: Request[Any, Any, Any],
    flow: FromDishka[SignInFlow],
    cache: FromDishka[Cache],
    code: Annotated[str, QueryParameter(max_length=2048)] = "",
    # `state` is a name Litestar reserves: the query parameter is read under another name.
    oauth_state: Annotated[str, QueryParameter(name="state", max_length=512)] = "",
) -> Response[Any]:
    if flow.kinde is None:
        return error_response(404, NOT_CONFIGURED)
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not oauth_state or not cookie or not hmac.compare_digest(oauth_state.encode(), cookie.encode()):
        return error_response(400, "this sign-in was not started in this browser: start again at /api/v1/auth/login")
    raw = await cache.get(_pending_key(oauth_state))
    if raw is None:
        return error_response(400, "this sign-in expired or was already used: start again at /api/v1/auth/login")
    await cache.delete(_pending_key(oauth_state))  # one callback per login
    pending = msgspec.json.decode(raw, type=_Pending)
    try:
        login = LoginRequest(pending.url, pending.state, pending.code_verifier)
        signed_in = await flow.kinde.finish(code, oauth_state, login)
    except SignInFailed as exc:
        return error_response(400, str(exc))
    body = SignedInOut(signed_in.identity.user_id, signed_in.identity.email, signed_in.access_token,
                       expires_in=signed_in.expires_in)
    response: Response[Any]
    if "text/html" in request.headers.get("accept", ""):
        # A browser: back to the dashboard, the token in the URL's fragment, which the browser never
        # sends to a server (nor logs in a Referer); the page moves it to the tab's storage.
        response = Redirect("/#" + urlencode({"access_token": body.access_token}), status_code=303)
    else:
        response = Response(body)
    response.delete_cookie(STATE_COOKIE, path="/api/v1/auth")
    return response


def auth_router() -> DishkaRouter:
    return DishkaRouter("/api/v1/auth", route_handlers=[login, callback], tags=["sign-in"])
