"""Alerts to people: webhook, Slack and Telegram channels, fanned out with de-duplication."""

from adapters.alerts.channels import AlertDeliveryFailed, SlackNotifier, TelegramNotifier, WebhookNotifier
from adapters.alerts.fanout import FanoutNotifier

__all__ = ["AlertDeliveryFailed", "FanoutNotifier", "SlackNotifier", "TelegramNotifier", "WebhookNotifier"]
