"""Paged list answers (issue 17): `?limit=` and an opaque `?cursor=`, answered as
`{"items": [...], "next": cursor | null}`; no list endpoint answers without a bound.

A cursor is the base64url (unpadded) of a small msgpack struct: a version, a digest of the user
it was given to, the endpoint it belongs to, and the key of the last item of its page. Each list
has a stable order with a tie-breaker, and the key says where the next page starts, so items
recorded between two pages are neither skipped nor repeated. A malformed cursor (not of the
documented characters and length) is a 400; one of the right shape that this API did not give
for this user and this list (another user's or list's, another version, made up) is a 422
naming `cursor`, as any value of the right shape that breaks a rule the schema cannot state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

import msgspec
from litestar.params import QueryParameter

from application.errors import ApplicationError

CURSOR_VERSION = 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"

Limit = Annotated[int, QueryParameter(
    ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")]
Cursor = Annotated[str | None, QueryParameter(
    max_length=400, pattern=CURSOR_PATTERN,
    description="the `next` of the previous page, as given; leave it out for the first page")]

Key = list[str | int]
T = TypeVar("T")


class UnknownCursor(ApplicationError):
    """A cursor of the right shape that is not one this API gave for this user and list (422)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cursor: {reason}")


class _CursorBody(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    user: str  # a digest of the user id: the cursor says whose it is without saying who
    endpoint: str
    key: Key


def user_tag(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def encode_cursor(user_id: str, endpoint: str, key: Key) -> str:
    raw = msgspec.msgpack.encode(_CursorBody(CURSOR_VERSION, user_tag(user_id), endpoint, key))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, user_id: str, endpoint: str) -> Key | None:
    """The key a cursor carries (None for no cursor: the first page); 400 for any other cursor."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = msgspec.msgpack.decode(raw, type=_CursorBody)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise UnknownCursor("not a cursor this API gave: use a page's `next` as given") from None
    if body.version != CURSOR_VERSION:
        raise UnknownCursor("a cursor of an older version: start again without one")
    if body.user != user_tag(user_id) or body.endpoint != endpoint:
        raise UnknownCursor("a cursor of another list or another user: start again without one")
    return body.key


def key_int(key: Key | None) -> int | None:
    """The one whole number a cursor's key holds (an event position), or None for no key."""
    if key is None:
        return None
    if len(key) != 1 or not isinstance(key[0], int) or not 0 <= key[0] <= 2**62:
        raise UnknownCursor("not a cursor of this list")
    return key[0]


def key_str(key: Key | None, parts: int = 1) -> list[str] | None:
    """The strings a cursor's key holds (ids, times), or None for no key."""
    if key is None:
        return None
    if len(key) != parts or not all(isinstance(k, str) for k in key):
        raise UnknownCursor("not a cursor of this list")
    return [str(k) for k in key]


def after_id(items: Sequence[T], ident: Callable[[T], str], last: list[str] | None) -> Sequence[T]:
    """The items after the one whose id is `last[0]`, in an append-only list in creation order
    (targets, positions: never deleted, new ones come last). Unknown id: 400."""
    if last is None:
        return items
    for index, item in enumerate(items):
        if ident(item) == last[0]:
            return items[index + 1:]
    raise UnknownCursor("its item is unknown: start again without one")


def cut(items: Sequence[T], limit: int, key: Callable[[T], Key], user_id: str, endpoint: str,
        ) -> tuple[list[T], str | None]:
    """The first `limit` items and the cursor to the rest (None: there is no more). Give one item
    more than `limit` when there may be more: that it is there says there is a next page."""
    page = list(items[:limit])
    more = len(items) > limit
    return page, encode_cursor(user_id, endpoint, key(page[-1])) if more and page else None
