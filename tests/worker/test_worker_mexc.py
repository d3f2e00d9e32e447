"""`sniper worker` on (the fake) MEXC, live: calendar → ready state → snipe at launch, end to end
in a real process. A trader whose profile is paper fills on paper on that same live worker: only
the live trader's order reaches the exchange."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

from adapters.clock import SystemClock
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.mexc.streams import deals_channel
from application.use_cases.settings import ChangeTraderSettings
from domain.listing import target_id_for
from domain.risk import DEFAULT_RISK_PROFILE
from domain.target import snipe_client_order_id
from domain.trader import TradingPreferences
from domain.values import Symbol
from tests.crash.support import SYMBOL, USER, Children, all_events, child_env, eventually, fake_exchange, names
from tests.fakes.mexc_http import FakeListing
from tests.fakes.mexc_ws import FakeMexcWebSocketServer

COIN = "new-77"
# From the announcement to the launch: a calendar slot and a state slot (1 s each) must see the
# listing ready before it launches, on a loaded machine too.
LISTING_LEAD_SECONDS = 15


async def seed_traders(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        change = ChangeTraderSettings(SqlEventStore(engine), SystemClock())
        live = replace(DEFAULT_RISK_PROFILE, live=True)
        amount = DEFAULT_RISK_PROFILE.max_quote_per_snipe / 10
        await change(USER, TradingPreferences(auto_snipe=True, quote_amount=amount, risk=live))
        await change(
            "bob", TradingPreferences(auto_snipe=True, quote_amount=DEFAULT_RISK_PROFILE.max_quote_per_snipe / 10)
        )
    finally:
        await engine.dispose()


async def test_a_live_worker_snipes_the_listing_and_a_paper_trader_stays_on_paper(tmp_path: Path) -> None:
    """...and the stop-loss fires on a price pushed by the WebSocket stream (REST still says the old price)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await seed_traders(url)
    children = Children()
    async with fake_exchange() as fake, FakeMexcWebSocketServer() as ws:
        env = child_env(url, fake, SNIPER_MARKET="mexc", SNIPER_LIVE="1", SNIPER_CALENDAR_POLL_SECONDS="1",
                        SNIPER_STATE_POLL_SECONDS="0.5", SNIPER_PREPARE_AHEAD_SECONDS="2", SNIPER_PRICE_POLL_MS="500",
                        MEXC_WS_URL=ws.url)
        try:
            worker = await children.start("worker", env, "-m", "entrypoints.cli", "worker")
            # Announced once the worker polls (see LISTING_LEAD_SECONDS), however long its start-up took.
            await worker.expect("start-up reconciliation:", timeout=90)
            launch_ms = fake.open_in(SYMBOL, LISTING_LEAD_SECONDS)
            fake.announce(FakeListing(COIN, "NEW", launch_ms, "New Coin", sts=2, st=2, tt=4))

            async def both_filled() -> bool:
                return names(await all_events(url)).count("SnipeOrderFilled") == 2

            await eventually(both_filled, "both snipes filled", timeout=60, interval=0.2)
            await ws.wait_subscribed(deals_channel(Symbol.parse(SYMBOL)), timeout=20)
            await ws.publish_deal(SYMBOL, "0.00008", "1000")  # about 16 % below the entry: stop-loss (10 %)

            async def both_stopped() -> bool:
                return names(await all_events(url)).count("StopLossHit") == 2

            try:
                await eventually(both_stopped, "both positions stopped out", timeout=20)
            except AssertionError:
                worker.kill()
                await worker.finish(10)
                raise AssertionError(worker.output[-3000:] + worker.stderr[-6000:]) from None
            worker.proc.send_signal(signal.SIGTERM)
            assert await worker.finish(40) == 0, worker.stderr
        finally:
            await children.close()
        accepted = fake.accepted_orders(SYMBOL)
    live_target, paper_target = target_id_for(USER, COIN), target_id_for("bob", COIN)
    # The live trader's buy and stop-loss sell reached the exchange; the paper trader's never did.
    assert [o.side for o in accepted] == ["BUY", "SELL"]
    assert accepted[0].client_order_id == snipe_client_order_id(live_target).value
    events = await all_events(url)
    filled = {r.stream_id for r in events if type(r.event).__name__ == "SnipeOrderFilled"}
    assert filled == {f"target-{live_target}", f"target-{paper_target}"}
    assert "start-up reconciliation:" in worker.output


async def test_two_durable_workers_run_the_snipe_job_once(fresh_postgres_database: str, redis_url: str) -> None:
    """With Redis, snipes are SAQ jobs: two live workers on one deployment, one order. The
    deployment-wide polls (calendar, symbol states) are SAQ periodic jobs: each slot runs on one
    worker, so MEXC sees one calendar request per second, not one per worker."""
    import secrets
    import time

    from adapters.redis import RedisAgentStatusBoard, redis_client
    from adapters.scheduling import SaqScheduler, job_queue
    from application.supervisor import SHARED_WORKER
    from application.use_cases.listings import EXECUTE_SNIPE
    from tests.fakes.mexc_http import CALENDAR, SYMBOLS_V2

    url = fresh_postgres_database
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    await seed_traders(url)
    children = Children()
    async with fake_exchange() as fake:
        env = child_env(url, fake, redis_url=redis_url, redis_prefix=prefix, SNIPER_MARKET="mexc", SNIPER_LIVE="1",
                        SNIPER_CALENDAR_POLL_SECONDS="1", SNIPER_STATE_POLL_SECONDS="1",
                        SNIPER_PREPARE_AHEAD_SECONDS="2")
        try:
            started = time.monotonic()
            workers = [await children.start(f"worker-{n}", {**env, "SNIPER_WORKER_ID": f"w{n}"},
                                            "-m", "entrypoints.cli", "worker") for n in (1, 2)]
            # A listing seen ready after its launch is never sniped: announce it only once both
            # workers take slots (their start-up takes seconds on a loaded machine), with a launch
            # far enough ahead for a calendar slot and a state slot to see it.
            for worker in workers:
                await worker.expect("snipes are durable jobs on SAQ", timeout=90)
            launch_ms = fake.open_in(SYMBOL, LISTING_LEAD_SECONDS)
            fake.announce(FakeListing(COIN, "NEW", launch_ms, "New Coin", sts=2, st=2, tt=4))

            async def both_scheduled() -> bool:
                return names(await all_events(url)).count("SnipeScheduled") == 2

            await eventually(both_scheduled, "both snipes scheduled", timeout=LISTING_LEAD_SECONDS, interval=0.2)

            async def both_filled() -> bool:
                return names(await all_events(url)).count("SnipeOrderFilled") == 2

            await eventually(both_filled, "both snipes filled", timeout=60, interval=0.2)
            client = redis_client(redis_url)

            async def shared_beats() -> list:
                found = [
                    s for s in await RedisAgentStatusBoard(client, prefix).statuses() if s.worker_id == SHARED_WORKER
                ]
                # Reconciliation's one-minute slot may not have come yet; a round that failed on a
                # slow answer beats healthy again on its next slot.
                ok = {s.name for s in found} >= {"calendar", "pattern-discovery"} and all(s.healthy for s in found)
                return found if ok else []

            try:
                shared = await eventually(shared_beats, "healthy heartbeats of the shared rounds", timeout=30)
            finally:
                await client.aclose()
            for worker in workers:
                worker.proc.send_signal(signal.SIGTERM)
            for worker in workers:
                assert await worker.finish(40) == 0, worker.stderr
            polling_seconds = time.monotonic() - started
        finally:
            await children.close()
        accepted = fake.accepted_orders(SYMBOL)
        arrivals = [a for a in fake.order_arrivals]
        calendar_requests, state_requests = fake.hits[CALENDAR], fake.hits[SYMBOLS_V2]
    # At most one per one-second slot across both workers (each worker polling would be about twice
    # this; SAQ takes up the next slot within a second of the last run's end, so some slots of a
    # one-second interval go by).
    assert 3 <= calendar_requests <= polling_seconds + 2, (calendar_requests, polling_seconds)
    assert state_requests <= polling_seconds + 2, (state_requests, polling_seconds)
    # Heartbeats of the deployment's rounds, published under the deployment, not a worker.
    assert {s.name for s in shared} >= {"calendar", "pattern-discovery"}, shared
    live_target = target_id_for(USER, COIN)
    assert [o.client_order_id for o in accepted] == [snipe_client_order_id(live_target).value]
    # One order in all: no second send refused as a duplicate. The send plan may aim its first sends
    # just before the open; those are refused as not open yet (10007) and are the same order.
    assert [a.outcome for a in arrivals if a.outcome != "10007"] == ["accepted"], arrivals
    assert {a.client_order_id for a in arrivals} == {snipe_client_order_id(live_target).value}
    assert all("durable jobs on SAQ" in w.output for w in workers)
    async with job_queue(redis_url, prefix) as queue:
        state = await SaqScheduler(queue).state(EXECUTE_SNIPE, live_target)
        assert state is not None and state.status == "complete", state
        keys = [k async for k in queue.redis.scan_iter(match=f"*{prefix}*")]
        if keys:
            await queue.redis.delete(*keys)
