"""/api/v1/notifications: a trader's notification settings (kinds, channels, daily summary) and
the messages that could not be delivered. Secrets are write-only: an answer says whether one is
set, never what it is."""

from __future__ import annotations

from typing import Annotated

from dishka import FromDishka, Provider, Scope, provide
from litestar import get, put
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

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
from entrypoints.config import Settings
from entrypoints.http.errors import error_responses
from entrypoints.http.schemas import NotificationsIn, NotificationsOut, UndeliveredOut

AUTH = (400, 401, 429)


@get("/notifications", responses=error_responses(*AUTH), summary="Notification settings: kinds, channels, summary time")
async def get_notifications(
    identity: FromDishka[Identity], query: FromDishka[GetNotificationSettings]
) -> NotificationsOut:
    return NotificationsOut.of(await query(identity.user_id))


@put("/notifications", status_code=HTTP_200_OK, responses=error_responses(*AUTH, 409, 413, 422),
     summary="Replace notification settings (secrets are write-only)")
async def put_notifications(
    data: JSONBody[NotificationsIn], identity: FromDishka[Identity], change: FromDishka[ChangeNotificationSettings]
) -> NotificationsOut:
    channels = [ChannelChange(c.kind, c.enabled, c.address, c.secret) for c in data.channels]
    # A comprehension, not dict(): the kind and mode names (Literals) become the plain str -> str mapping asked for.
    modes: dict[str, str] = {kind: mode for kind, mode in data.kinds.items()}
    return NotificationsOut.of(await change(identity.user_id, modes, channels, data.daily_summary_at))


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
    def sealer(self, settings: Settings) -> SecretSealer:
        from entrypoints.notifications import notification_sealer

        return notification_sealer(settings)

    @provide(scope=Scope.APP)
    def outbox(self, store: EventStore) -> NotificationOutbox:
        if isinstance(store, SqlEventStore):
            return SqlNotificationOutbox(store.engine)
        return _NoOutbox()  # type: ignore[return-value]

    get_notifications = provide(GetNotificationSettings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def change_notifications(self, store: EventStore, clock: Clock, sealer: SecretSealer) -> ChangeNotificationSettings:
        return ChangeNotificationSettings(store, clock, sealer)

    undelivered = provide(ListUndeliveredNotifications, scope=Scope.APP)
