"""Trade notifications: the SQL outbox (the notifier's checkpoint, rows and lease), the sealing of
channel secrets, and the channels (Telegram over httpx; Discord, Slack and e-mail through apprise;
the HMAC-signed webhook)."""

from adapters.notifications.channels import AppriseSender, TelegramSender, WebhookSender
from adapters.notifications.outbox import SqlNotificationOutbox
from adapters.notifications.sealer import KeyRingSealer

__all__ = ["AppriseSender", "KeyRingSealer", "SqlNotificationOutbox", "TelegramSender", "WebhookSender"]
