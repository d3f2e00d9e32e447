"""The Telegram Bot API, as the control bot uses it."""

from adapters.telegram.bot_api import HttpBotApi

__all__ = ["HttpBotApi"]
