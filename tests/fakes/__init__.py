"""Local fakes of outside services for tests (Telegram Bot API, SMTP, webhook receivers)."""
