"""Local fakes of outside services for tests and benchmarks: MEXC (REST `mexc_http`, WebSocket `mexc_ws`),
the AI providers (`ai`), Telegram Bot API, SMTP, webhook receivers, and their HTTP base (`http_server`).
Not part of the installed package: nothing under domain, application, adapters or entrypoints imports them."""
