"""The "worker process" of the crash tests: executes ONE existing snipe target through the real
container (entrypoints.container.mexc_trading_container), as a production worker would.

    python -m tests.crash.worker_script [TARGET_ID]

Settings come from the environment like every `sniper` command (DATABASE_URL, REDIS_URL,
MEXC_BASE_URL, SNIPER_LEASE_TTL_SECONDS...): LIVE on MEXC_BASE_URL when MEXC_API_KEY and
MEXC_SECRET_KEY are set, else paper. Without TARGET_ID the worker builds its container (store,
Redis, HTTP client), prints `ready` and reads the target id from stdin, so a test can start
several workers and release them at the same moment.

With REDIS_URL it first prints `redis-client <id>`, the connection its leases go over.
Prints `outcome <result> <detail>` and exits 0 when filled, 3 when skipped, 1 when failed or
refused; an exception prints its traceback and exits 2.
"""

from __future__ import annotations

import asyncio
import sys
import traceback

from adapters.clock import SystemClock
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from entrypoints.config import load_settings
from entrypoints.container import RedisHandle, TradingMode, mexc_trading_container

EXIT_CODES = {SnipeResult.FILLED: 0, SnipeResult.SKIPPED: 3, SnipeResult.FAILED: 1, SnipeResult.REFUSED: 1}
EXIT_CRASHED = 2


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def work(target_id: str | None) -> int:
    settings = load_settings()
    mode = TradingMode.LIVE if settings.operator_keys else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, SystemClock())
    try:
        execute = await container.get(ExecuteSnipe)  # opens the store, Redis and the HTTP client
        redis = (await container.get(RedisHandle)).client
        if redis is not None:
            # The id of its (one, reused) pooled connection: tests CLIENT KILL exactly this worker's.
            say(f"redis-client {await redis.client_id()}")
        if target_id is None:
            say("ready")
            target_id = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if not target_id:
                say("crashed: no target id on stdin")
                return EXIT_CRASHED
        say(f"executing {target_id}")
        outcome = await execute(target_id)
        say(f"outcome {outcome.result.value} {outcome.detail}")
        return EXIT_CODES[outcome.result]
    finally:
        await container.close()


def main(argv: list[str]) -> int:
    try:
        return asyncio.run(work(argv[0] if argv else None))
    except Exception as exc:  # noqa: BLE001 - the test reads what went wrong
        traceback.print_exc()
        say(f"crashed {type(exc).__name__}: {exc}")
        return EXIT_CRASHED


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
