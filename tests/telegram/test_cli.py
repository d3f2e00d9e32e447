"""`sniper telegram`: the bot alone. Refused in one line without its token or in webhook mode;
with them, it answers until stopped."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest

from application.telegram import NOT_LINKED
from entrypoints.cli import main
from entrypoints.config import load_settings
from entrypoints.telegram import run_telegram
from tests.fakes.telegram import FakeTelegram

# A closed local port: nothing here may reach the real MEXC.
NOWHERE = "http://127.0.0.1:9"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("env, message", [
    ({}, "sniper: TELEGRAM_BOT_TOKEN is not set: the Telegram bot needs its token (from BotFather)\n"),
    ({"TELEGRAM_BOT_TOKEN": "1:A", "TELEGRAM_WEBHOOK_SECRET": "hook_0123456789abcdef"},
     "sniper: TELEGRAM_WEBHOOK_SECRET is set: in webhook mode the API takes the bot's updates "
     "(POST /api/v1/telegram/webhook); unset it to long-poll with `sniper telegram`\n"),
])
def test_refused_in_one_line(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert run_cli("telegram") == (2, "", message)
    assert not (tmp_path / "none.db").exists()


async def test_the_bot_alone_answers_until_stopped(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        settings = load_settings({
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "MEXC_BASE_URL": NOWHERE,
            "MEXC_WEB_URL": NOWHERE, "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.api_url})
        out, stop = io.StringIO(), asyncio.Event()
        task = asyncio.create_task(run_telegram(settings, out, stop=stop, poll_timeout=timedelta(seconds=1)))
        await tg.push_update(5, "/status")
        [reply] = await tg.wait_for_messages(1, timeout=20)
        assert (reply.chat_id, reply.text) == ("5", NOT_LINKED)
        stop.set()
        bot = await asyncio.wait_for(task, 10)
        assert bot.handled == 1
    assert out.getvalue().splitlines() == [
        "mexc-sniper telegram bot (paper account); stop with Ctrl-C", "telegram bot: answering (long polling)"]
