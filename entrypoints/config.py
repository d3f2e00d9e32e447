"""Settings from environment variables, checked at start.

Every variable has a default that runs on a fresh laptop. A bad value stops the program
with one line naming the variable and what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import adapters.paper
from application.errors import ConfigurationError
from application.timing import SnipeTiming

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///sniper.db"
BUNDLED_SCENARIO = Path(adapters.paper.__file__).resolve().parent / "scenarios" / "demo.json"


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    default: str
    meaning: str


# The one list of variables: read here, printed by `sniper config`, documented in README.md.
ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("DATABASE_URL", DEFAULT_DATABASE_URL,
           "Event store. sqlite+aiosqlite:///FILE (embedded default), postgresql+asyncpg://USER@HOST:PORT/DB, or memory://"),
    EnvVar("REDIS_URL", "(unset)", "Redis for cache and snipe leases shared by several processes, e.g. redis://127.0.0.1:6379/0; unset = in-process"),
    EnvVar("REDIS_PREFIX", "sniper", "Prefix of every Redis key and channel, so deployments can share one Redis"),
    EnvVar("SNIPER_SCENARIO", "(bundled demo)", "Replay scenario file the paper exchange plays"),
    EnvVar("SNIPER_CALENDAR_POLL_SECONDS", "30", "How often the new-coin calendar is polled"),
    EnvVar("SNIPER_STATE_POLL_SECONDS", "10", "How often symbol states of watched listings are polled"),
    EnvVar("SNIPER_LEAD_WINDOW_MINUTES", "210", "Advance-detection window: launches closer than this are prepared for"),
    EnvVar("SNIPER_PREPARE_AHEAD_SECONDS", "2", "The snipe executor starts this long before launch"),
    EnvVar("SNIPER_SNIPE_WINDOW_SECONDS", "30", "After launch, 'not yet open' is retried this long"),
    EnvVar("SNIPER_RETRY_INTERVAL_MS", "20", "Pause between 'not yet open' retries"),
    EnvVar("SNIPER_EXPIRY_GRACE_SECONDS", "300", "A target not ready this long after launch expires"),
    EnvVar("SNIPER_LEASE_TTL_SECONDS", "120",
           "How long one executor holds a snipe; a killed worker's snipe waits this long before a restart resolves it"),
    EnvVar("SNIPER_USER", "local", "User id the command line acts for (manual snipes)"),
    EnvVar("MEXC_BASE_URL", "https://api.mexc.com", "MEXC REST base URL (spot v3)"),
    EnvVar("MEXC_WEB_URL", "https://www.mexc.com", "MEXC web base URL (new-coin calendar, symbolsV2)"),
    EnvVar("MEXC_WS_URL", "wss://wbs-api.mexc.com/ws", "MEXC WebSocket market streams (protobuf)"),
    EnvVar("MEXC_API_KEY", "(unset)", "MEXC API key; with no keys only paper trading is possible"),
    EnvVar("MEXC_SECRET_KEY", "(unset)", "MEXC API secret; never printed or logged"),
    EnvVar("MEXC_RECV_WINDOW_MS", "5000", "recvWindow sent with signed MEXC calls (1-60000)"),
)

SECRET_VARS = frozenset({"MEXC_SECRET_KEY", "MEXC_API_KEY", "DATABASE_URL", "REDIS_URL"})


@dataclass(frozen=True, slots=True)
class MexcSettings:
    base_url: str = "https://api.mexc.com"
    web_url: str = "https://www.mexc.com"
    ws_url: str = "wss://wbs-api.mexc.com/ws"
    api_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    recv_window_ms: int = 5000

    @property
    def has_keys(self) -> bool:
        return bool(self.api_key and self.secret_key)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    scenario_path: Path = BUNDLED_SCENARIO
    calendar_poll: timedelta = timedelta(seconds=30)
    state_poll: timedelta = timedelta(seconds=10)
    timing: SnipeTiming = field(default_factory=SnipeTiming)
    user_id: str = "local"
    redis_url: str | None = None
    redis_prefix: str = "sniper"
    mexc: MexcSettings = field(default_factory=MexcSettings)


def _number(env: Mapping[str, str], name: str, default: str, low: float, high: float, integer: bool = False) -> float:
    raw = env.get(name, default).strip()
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigurationError(f"{name} must be {kind} between {low:g} and {high:g}, got {raw!r}") from None
    if not (low <= value <= high):
        raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL", DEFAULT_DATABASE_URL).strip()
    if url == "memory://":
        return url
    if url.startswith("sqlite+aiosqlite:///") and len(url) > len("sqlite+aiosqlite:///"):
        return url
    if url.startswith("postgresql+asyncpg://") and len(url) > len("postgresql+asyncpg://"):
        return url
    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigurationError(f"DATABASE_URL must name the asyncpg driver: use postgresql+asyncpg://..., got {_redact(url)!r}")
    if url.startswith("sqlite://"):
        raise ConfigurationError(f"DATABASE_URL must name the aiosqlite driver: use sqlite+aiosqlite:///FILE, got {url!r}")
    raise ConfigurationError(
        f"DATABASE_URL must be sqlite+aiosqlite:///FILE, postgresql+asyncpg://... or memory://, got {_redact(url)!r}"
    )


def _redact(url: str) -> str:
    """Never echo a password back."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    url = env.get(name, default).strip().rstrip("/")
    if not url.startswith(schemes) or len(url.split("://", 1)[1]) == 0:
        raise ConfigurationError(f"{name} must be a {' or '.join(s.rstrip(':/') for s in schemes)} URL, got {url!r}")
    return url


def _mexc(env: Mapping[str, str]) -> MexcSettings:
    key = env.get("MEXC_API_KEY", "").strip()
    secret = env.get("MEXC_SECRET_KEY", "").strip()
    if bool(key) != bool(secret):
        missing = "MEXC_SECRET_KEY" if key else "MEXC_API_KEY"
        raise ConfigurationError(f"{missing} must be set too: MEXC keys come in pairs (or leave both unset for paper trading)")
    return MexcSettings(
        base_url=_url(env, "MEXC_BASE_URL", "https://api.mexc.com", ("https://", "http://")),
        web_url=_url(env, "MEXC_WEB_URL", "https://www.mexc.com", ("https://", "http://")),
        ws_url=_url(env, "MEXC_WS_URL", "wss://wbs-api.mexc.com/ws", ("wss://", "ws://")),
        api_key=key,
        secret_key=secret,
        recv_window_ms=int(_number(env, "MEXC_RECV_WINDOW_MS", "5000", 1, 60_000, integer=True)),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    scenario = env.get("SNIPER_SCENARIO", "").strip()
    scenario_path = Path(scenario) if scenario else BUNDLED_SCENARIO
    timing = SnipeTiming(
        lead_window=timedelta(minutes=_number(env, "SNIPER_LEAD_WINDOW_MINUTES", "210", 1, 7 * 24 * 60)),
        prepare_ahead=timedelta(seconds=_number(env, "SNIPER_PREPARE_AHEAD_SECONDS", "2", 0, 600)),
        snipe_window=timedelta(seconds=_number(env, "SNIPER_SNIPE_WINDOW_SECONDS", "30", 0.1, 3600)),
        retry_interval=timedelta(milliseconds=_number(env, "SNIPER_RETRY_INTERVAL_MS", "20", 1, 10_000)),
        expiry_grace=timedelta(seconds=_number(env, "SNIPER_EXPIRY_GRACE_SECONDS", "300", 0, 86_400)),
        lease_ttl=timedelta(seconds=_number(env, "SNIPER_LEASE_TTL_SECONDS", "120", 1, 3600)),
    )
    return Settings(
        database_url=_database_url(env),
        scenario_path=scenario_path,
        calendar_poll=timedelta(seconds=_number(env, "SNIPER_CALENDAR_POLL_SECONDS", "30", 1, 3600)),
        state_poll=timedelta(seconds=_number(env, "SNIPER_STATE_POLL_SECONDS", "10", 0.1, 3600)),
        timing=timing,
        user_id=_user(env),
        redis_url=_redis_url(env),
        redis_prefix=_redis_prefix(env),
        mexc=_mexc(env),
    )


def _user(env: Mapping[str, str]) -> str:
    user = env.get("SNIPER_USER", "local").strip()
    if not user or len(user) > 200 or any(c.isspace() for c in user):
        raise ConfigurationError(f"SNIPER_USER must be 1-200 characters without spaces, got {user!r}")
    return user


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")) or url.endswith("://"):
        raise ConfigurationError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {_redact(url)!r}")
    return url


def _redis_prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("REDIS_PREFIX", "sniper").strip()
    if not prefix or len(prefix) > 64 or any(c.isspace() or c == ":" for c in prefix):
        raise ConfigurationError(f"REDIS_PREFIX must be 1-64 characters without spaces or ':', got {prefix!r}")
    return prefix
