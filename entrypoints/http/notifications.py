"""/api/v1/notifications: a trader's notification settings (kinds, channels, daily summary) and
the messages that could not be delivered. Secrets are write-only: an answer says whether one is
set, never what it is."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from dishka import FromDishka, Provider, Scope, provide
from litestar import get, put
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta, Struct

from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.notifications import SqlNotificationOutbox
from application.identity import Identity
from application.notifications import (
    ChangeNotificationSettings,
    ChannelChange,
    GetNotificationSettings,
    ListUndeliveredNotifications,
    NotificationOutbox,
    OutboxEntry,
    SecretSealer,
)
from application.ports import Clock, EventStore
from domain.notifications import NotificationKind, NotificationPreferences
from entrypoints.config import Settings
from entrypoints.http.errors import error_responses

KindName = Literal["target_created", "snipe_scheduled", "snipe_filled", "snipe_failed", "exit", "position_closed",
                   "emergency_stop", "daily_summary"]
ModeName = Literal["on", "off", "silent"]
ChannelName = Literal["telegram", "discord", "slack", "email", "webhook"]
AUTH = (400, 401, 429)


class ChannelIn(Struct, forbid_unknown_fields=True):
    """One channel. `address`: the Telegram chat id, the e-mail address or the webhook URL.
    `secret` (write-only): the Discord or Slack webhook URL, the webhook's HMAC secret, or an SMTP
    URL of your own for e-mail; left out, the stored one is kept."""

    kind: ChannelName
    enabled: bool = True
    address: Annotated[str, Meta(max_length=500)] = ""
    secret: Annotated[str, Meta(max_length=2000)] | None = None


class ChannelOut(Struct):
    kind: str
    enabled: bool
    address: str
    secret_set: bool


class NotificationsIn(Struct, forbid_unknown_fields=True):
    """The whole of your notification settings (PUT replaces them). A kind left out of `kinds` is on."""

    kinds: dict[KindName, ModeName] = {}
    channels: Annotated[list[ChannelIn], Meta(max_length=5)] = []
    daily_summary_at: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                          description="HH:MM, UTC")] | None = None


class NotificationsOut(Struct):
    kinds: dict[str, str]
    channels: list[ChannelOut]
    daily_summary_at: str | None

    @classmethod
    def of(cls, p: NotificationPreferences) -> "NotificationsOut":
        return cls(
            {k.value: p.mode(k).value for k in NotificationKind},
            [ChannelOut(c.kind, c.enabled, c.address, bool(c.secret)) for c in p.channels],
            p.daily_summary_at,
        )


class UndeliveredOut(Struct):
    id: int
    kind: str
    channel: str
    title: str
    text: str
    attempts: int
    queued_at: datetime
    error: str | None

    @classmethod
    def of(cls, e: OutboxEntry) -> "UndeliveredOut":
        return cls(e.id, e.kind, e.channel, e.title, e.body, e.attempts, e.created_at, e.last_error)


@get("/notifications", responses=error_responses(*AUTH), summary="Notification settings: kinds, channels, summary time")
async def get_notifications(identity: FromDishka[Identity], query: FromDishka[GetNotificationSettings]) -> NotificationsOut:
    return NotificationsOut.of(await query(identity.user_id))


@put("/notifications", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409, 413, 422),
     summary="Replace notification settings (secrets are write-only)")
async def put_notifications(
    data: JSONBody[NotificationsIn], identity: FromDishka[Identity], change: FromDishka[ChangeNotificationSettings]
) -> NotificationsOut:
    channels = [ChannelChange(c.kind, c.enabled, c.address, c.secret) for c in data.channels]
    return NotificationsOut.of(await change(identity.user_id, dict(data.kinds), channels, data.daily_summary_at))


@get("/notifications/undelivered", responses=error_responses(*AUTH),
     summary="Messages that could not be delivered after their retries, newest first")
async def undelivered_notifications(
    identity: FromDishka[Identity], query: FromDishka[ListUndeliveredNotifications],
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> list[UndeliveredOut]:
    return [UndeliveredOut.of(e) for e in await query(identity.user_id, limit)]


NOTIFICATION_HANDLERS = [get_notifications, put_notifications, undelivered_notifications]


class _NoOutbox:
    """memory://: no worker delivers from another process, so nothing is ever undelivered here."""

    async def for_user(self, user_id: str, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        return []


class NotificationProvider(Provider):
    @provide(scope=Scope.APP)
    def sealer(self, settings: Settings) -> SecretSealer | None:
        from entrypoints.notifications import notification_sealer

        return notification_sealer(settings)

    @provide(scope=Scope.APP)
    def outbox(self, store: EventStore) -> NotificationOutbox:
        if isinstance(store, SqlEventStore):
            return SqlNotificationOutbox(store.engine)
        return _NoOutbox()  # type: ignore[return-value]

    get_notifications = provide(GetNotificationSettings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def change_notifications(self, store: EventStore, clock: Clock, sealer: SecretSealer | None) -> ChangeNotificationSettings:
        return ChangeNotificationSettings(store, clock, sealer)

    undelivered = provide(ListUndeliveredNotifications, scope=Scope.APP)
