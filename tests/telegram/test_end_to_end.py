"""Telegram control end to end: a real `sniper worker` process (MEXC market on the fake MEXC, paper
fills) runs the bot against the fake Bot API; the API runs in this process on the same SQLite
store. Every command goes through Telegram: /halt stops a scheduled snipe at its launch with the
halt's reason, /close sells, a chat nobody linked is refused."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from litestar.testing import AsyncTestClient

from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import make_engine
from application.telegram import HELP, NOT_LINKED
from domain.events import EmergencyStopActivated, ExitFilled, PositionClosed, PositionOpened, SnipeFailed
from domain.position import position_id_for
from entrypoints.telegram import TelegramBotProfile
from tests.crash.support import Children, all_events, child_env, eventually, fake_exchange
from tests.fakes.telegram import FakeTelegram
from tests.http.conftest import api_settings, make_app
from tests.http.support import auth
from tests.telegram.support import ask as ask_bot

ALICE_CHAT, STRANGER_CHAT = 4242, 777


async def test_every_command_through_telegram_against_a_running_worker_and_the_api(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telegram.db'}"
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    children = Children()
    async with fake_exchange() as mexc, FakeTelegram() as tg:
        settings = api_settings(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.api_url)
        app, container = make_app(settings)
        env = child_env(url, mexc, live=False, SNIPER_MARKET="mexc", SNIPER_USER="alice",
                        SNIPER_CALENDAR_POLL_SECONDS="1", SNIPER_STATE_POLL_SECONDS="1",
                        SNIPER_PREPARE_AHEAD_SECONDS="1",
                        TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.api_url)

        async def ask(chat: int, text: str) -> str:
            return await ask_bot(tg, chat, text, timeout=30)

        try:
            worker = await children.start("worker", env, "-m", "entrypoints.cli", "worker")
            await worker.expect("telegram bot: answering", timeout=90)
            # The test client runs the app on a loop of its own and blocks this one, where the fake
            # Bot API answers: the bot's name (getMe, asked once and kept) is asked from here first.
            assert await (await container.get(TelegramBotProfile)).name() == "@" + tg.bot_username
            async with AsyncTestClient(app=app) as api:
                # Linking: the code from the API, sent to the bot.
                link = (await api.post("/api/v1/telegram/link", headers=auth("alice"))).json()
                assert link["bot"] == "@" + tg.bot_username
                assert await ask(STRANGER_CHAT, "/status") == NOT_LINKED
                assert await ask(ALICE_CHAT, f"/link {link['code']}") == \
                    "Linked: this chat now acts for alice. /help lists the commands."
                assert await ask(ALICE_CHAT, "/help") == HELP
                status = await ask(ALICE_CHAT, "/status")
                assert status.startswith("Trading: on\nOpen positions: 0\nRealised P&L: today 0.00000000, total "
                                         "0.00000000\nSnipes to come: 0"), status
                assert await ask(ALICE_CHAT, "/positions") == "No open positions."
                assert await ask(ALICE_CHAT, "/targets") == "No snipes to come."

                # A snipe scheduled through the API, halted through Telegram before its launch.
                launch = datetime.now(UTC) + timedelta(seconds=3)
                first = await api.post("/api/v1/targets", headers=auth("alice"), json={
                    "symbol": "NEWUSDT", "launch_at": launch.isoformat(), "quote_amount": "10.01"})
                assert first.status_code == 201, first.text
                first_id = first.json()["target_id"]
                assert (await ask(ALICE_CHAT, "/targets")).startswith(
                    f"Snipes to come:\n{first_id} NEWUSDT 10.01000000"
                )
                assert await ask(ALICE_CHAT, "/halt token unlock at noon") == \
                    "Trading halted: token unlock at noon. New orders are refused until you /resume."
                assert await ask(STRANGER_CHAT, "/resume") == NOT_LINKED  # and nothing is cleared

                async def refused() -> list[str]:
                    return [r.event.reason for r in await all_events(url)
                            if isinstance(r.event, SnipeFailed) and r.stream_id == f"target-{first_id}"]

                [reason] = await eventually(refused, "the halted snipe refused at its launch", timeout=30)
                assert "token unlock at noon" in reason
                assert (await ask(ALICE_CHAT, "/status")).startswith(
                    "Trading: HALTED (emergency stop pressed by alice at "
                )
                assert await ask(ALICE_CHAT, "/resume") == "Emergency stop cleared.\nTrading: on"

                # A snipe that fills; its position closed through Telegram.
                second = await api.post("/api/v1/targets", headers=auth("alice"), json={
                    "symbol": "NEWUSDT", "launch_at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
                    "quote_amount": "10.01"})
                assert second.status_code == 201, second.text
                position_id = position_id_for(second.json()["target_id"])

                async def opened() -> bool:
                    return any(isinstance(r.event, PositionOpened) for r in await all_events(url))

                await eventually(opened, "the second snipe filled", timeout=30)
                assert (await ask(ALICE_CHAT, "/positions")).startswith(
                    f"Open positions:\n{position_id} NEWUSDT: 105235 left of 105235 at entry 0.00009512")
                assert (await ask(ALICE_CHAT, "/profit")).startswith("Realised P&L: 0.00000000 USDT\n")
                assert (await ask(ALICE_CHAT, "/daily")).startswith("Realised P&L per day (UTC), last 7 days:")
                # The paper account: SNIPER_PAPER_WALLET (1000 USDT) less the snipe's cost and fee, and its coins.
                assert await ask(ALICE_CHAT, "/balance") == \
                    "Balances (paper):\nNEW: 105235 free, 0 locked\nUSDT: 989.98504182 free, 0 locked"
                # Under the person's own stop a close is refused (their stop holds every exit).
                assert (await ask(ALICE_CHAT, "/halt hands off")).startswith("Trading halted: hands off.")
                assert (await ask(ALICE_CHAT, f"/close {position_id}")).startswith(
                    "Refused: emergency stop pressed by alice at "), "a close under a person's stop"
                assert await ask(ALICE_CHAT, "/resume") == "Emergency stop cleared.\nTrading: on"
                closed = await ask(ALICE_CHAT, f"/close {position_id}")
                assert closed.startswith(f"Sold 105235 of {position_id} at 0.00009512: closed, realised P&L "), closed
                closed = f"{position_id} is closed already; nothing sent."
                assert await ask(ALICE_CHAT, f"/close {position_id}") == closed
                assert await ask(ALICE_CHAT, "/positions") == "No open positions."

                # Unlinked through the API: the chat is refused from then on.
                assert (await api.delete("/api/v1/telegram/link", headers=auth("alice"))).status_code == 204
                assert await ask(ALICE_CHAT, "/status") == NOT_LINKED
            worker.proc.send_signal(signal.SIGTERM)
            assert await worker.finish(40) == 0, worker.stderr
        finally:
            await children.close()
            await container.close()
    events = await all_events(url)
    stops = [r for r in events if isinstance(r.event, EmergencyStopActivated)]
    assert [(r.user_id, r.event.activated_by, r.event.automatic, r.event.reason) for r in stops] == [
        ("alice", "alice", False, "token unlock at noon"), ("alice", "alice", False, "hands off")]
    exits = [r for r in events if isinstance(r.event, ExitFilled)]
    assert [type(r.event).__name__ for r in exits] == ["ManualExitFilled"]
    assert any(isinstance(r.event, PositionClosed) for r in events)
    assert mexc.accepted_orders() == []  # paper: nothing reached the exchange's order book
    assert tg.token not in worker.output + worker.stderr  # the token is a secret: never printed or logged
    answered = [line for line in worker.stderr.splitlines() if "telegram bot: answered" in line]
    print(f"\ntelegram answers through the worker: {len(answered)}; " + ", ".join(
        line.rsplit(" in ", 1)[-1] for line in answered))
