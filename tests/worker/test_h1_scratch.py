"""h1 scratch: diagnose the flaky two-worker test (removed after)."""
import secrets
import signal
import time

from adapters.mexc.fake.http import CALENDAR, SYMBOLS_V2, FakeListing
from tests.crash.support import SYMBOL, Children, all_events, child_env, eventually, fake_exchange, names
from tests.worker.test_worker_mexc import COIN, seed_traders


async def test_diag(fresh_postgres_database: str, redis_url: str) -> None:
    url = fresh_postgres_database
    prefix = f"h1-{secrets.token_hex(6)}"
    await seed_traders(url)
    children = Children()
    t0 = time.monotonic()
    async with fake_exchange() as fake:
        launch_ms = fake.open_in(SYMBOL, 7)
        fake.announce(FakeListing(COIN, "NEW", launch_ms, "New Coin", sts=2, st=2, tt=4))
        env = child_env(url, fake, redis_url=redis_url, redis_prefix=prefix, SNIPER_MARKET="mexc", SNIPER_LIVE="1",
                        SNIPER_CALENDAR_POLL_SECONDS="1", SNIPER_STATE_POLL_SECONDS="1",
                        SNIPER_PREPARE_AHEAD_SECONDS="2")
        workers = [await children.start(f"worker-{n}", {**env, "SNIPER_WORKER_ID": f"w{n}"},
                                        "-m", "entrypoints.cli", "worker") for n in (1, 2)]

        async def both_filled() -> bool:
            return names(await all_events(url)).count("SnipeOrderFilled") == 2
        ok = True
        try:
            await eventually(both_filled, "both snipes filled", timeout=40)
        except AssertionError:
            ok = False
        for w in workers:
            w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            await w.finish(60)
        await children.close()
        print("elapsed", time.monotonic() - t0, "ok", ok)
        print("hits", fake.hits[CALENDAR], fake.hits[SYMBOLS_V2], "arrivals", len(fake.order_arrivals))
        print("launch_ms", launch_ms)
        for r in await all_events(url):
            print("EVENT", type(r.event).__name__, r.stream_id, getattr(r, "occurred_at", ""), getattr(r.event, "detail", ""), getattr(r.event, "reason", ""))
        for w in workers:
            print("=====", w.name, "\n", w.output[-6000:], "\n--- stderr\n", w.stderr[-8000:])
        assert ok
