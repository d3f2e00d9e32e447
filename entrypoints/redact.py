"""The one way a configured URL is shown to a person: `mask_url`.

Used by `sniper config` for every URL-valued variable and by every configuration error that
echoes a value. It never raises and never needs the value to be well formed: a malformed URL is
exactly what an error message echoes, so when the shape is unclear it masks more, not less.
"""

from __future__ import annotations

MASK = "***"

# Query or fragment parameters whose value is masked: any name containing one of these.
_SECRET_PARAMETER_PARTS = ("pass", "pwd", "token", "key", "secret", "sig", "auth", "credential", "session")


def mask_url(url: str) -> str:
    """`url` with its userinfo's password (or a lone userinfo, often a token) and secret-looking
    query and fragment parameters replaced by `***`:

        redis://:pw@host:6379/0                 -> redis://***@host:6379/0
        postgresql://app:pw@db/x?sslmode=require -> postgresql://app:***@db/x?sslmode=require
        https://h/cb?code=1&token=abc            -> https://h/cb?code=1&token=***
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    # Everything up to the last '@' is userinfo, even if it holds '/', '?', '#' or '@' that should
    # have been percent-encoded; an '@' that really was in the query costs only over-masking.
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        shown_user = f"{user}:{MASK}" if colon and user and "/" not in user else MASK
        rest = f"{shown_user}@{rest}"
    else:
        rest = _mask_odd_port(rest)
    rest = _mask_parameters(rest, "#")
    rest = _mask_parameters(rest, "?")
    return f"{scheme}{separator}{rest}"


def _mask_odd_port(rest: str) -> str:
    """`host:port` whose port is not a number is more likely `user:password` that lost its '@'."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    host, colon, port = authority.rpartition(":")
    if not colon or authority.startswith("[") or port.isdigit() or not port:
        return rest
    return f"{host}:{MASK}{rest[end:]}"


def _mask_parameters(text: str, mark: str) -> str:
    head, found, tail = text.partition(mark)
    if not found:
        return text
    # The query ends where a fragment starts (already masked by then); the fragment runs to the end.
    params, hash_, fragment = tail.partition("#") if mark == "?" else (tail, "", "")
    masked = "&".join(_mask_parameter(p) for p in params.split("&"))
    return f"{head}{found}{masked}{hash_}{fragment}"


def _mask_parameter(param: str) -> str:
    name, equals, value = param.partition("=")
    if equals and value and any(part in name.lower() for part in _SECRET_PARAMETER_PARTS):
        return f"{name}={MASK}"
    return param
