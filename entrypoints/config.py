"""Settings from environment variables, checked at start.

Every variable has a default that runs on a fresh laptop. A bad value stops the program
with one line naming the variable and what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import adapters.paper
from application.errors import ConfigurationError
from application.timing import SnipeTiming
from entrypoints.redact import mask_url

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
           "Event store. sqlite+aiosqlite:///FILE (embedded default), postgresql://USER:PASSWORD@HOST:PORT/DB "
           "(also postgres://, postgresql+asyncpg://; libpq's sslmode= and sslrootcert= understood), or memory://"),
    EnvVar("NEON_DATABASE_URL", "(unset)", "Alias of DATABASE_URL (the seed system's name), read only when "
           "DATABASE_URL is unset; both set and different is refused"),
    EnvVar("REDIS_URL", "(unset)", "Redis for cache and snipe leases shared by several processes, e.g. redis://127.0.0.1:6379/0; unset = in-process"),
    EnvVar("REDIS_PREFIX", "sniper", "Prefix of every Redis key and channel, so deployments can share one Redis"),
    EnvVar("REDIS_MAX_CONNECTIONS", "100", "Redis connections one process opens at most (the live streams of an API "
           "process share one of them)"),
    EnvVar("REDIS_POOL_TIMEOUT_SECONDS", "2", "How long a command waits for a free Redis connection when all "
           "REDIS_MAX_CONNECTIONS are busy; then that request alone fails (503)"),
    EnvVar("SNIPER_SCENARIO", "(bundled demo)", "Replay scenario file the paper exchange plays"),
    EnvVar("SNIPER_CALENDAR_POLL_SECONDS", "30", "How often the new-coin calendar is polled"),
    EnvVar("SNIPER_STATE_POLL_SECONDS", "10", "How often symbol states of watched listings are polled"),
    EnvVar("SNIPER_LEAD_WINDOW_MINUTES", "210", "Advance-detection window: launches closer than this are prepared for"),
    EnvVar("SNIPER_PREPARE_AHEAD_SECONDS", "2", "The snipe executor starts this long before launch"),
    EnvVar("SNIPER_SNIPE_WINDOW_SECONDS", "30", "After launch, 'not yet open' is retried this long"),
    EnvVar("SNIPER_RETRY_INTERVAL_MS", "20", "Pause between 'not yet open' retries"),
    EnvVar("SNIPER_BRACKET_SENDS", "40", "At most this many sends back to back in the bracket around the open"),
    EnvVar("SNIPER_LAUNCH_ORDER_BUDGET", "400",
           "Order sends per 10 s all traders of one launch may spend from this IP (split between them)"),
    EnvVar("SNIPER_LAUNCH_PRIORITY", "1",
           "SCHED_FIFO priority around a launch (0 off; needs root or CAP_SYS_NICE, else a warning)"),
    EnvVar("SNIPER_EXPIRY_GRACE_SECONDS", "300", "A target not ready this long after launch expires"),
    EnvVar("SNIPER_LEASE_TTL_SECONDS", "15",
           "How long a snipe's lease lasts unrenewed (renewed every third of it while its executor lives): a killed "
           "worker's snipe is taken up again this long after it died. At least 1.5 x (MEXC_RECV_WINDOW_MS + 1.5 s): "
           "a send starts only while the lease holds for the send's time in flight"),
    EnvVar("SNIPER_USER", "local", "User id the command line acts for (manual snipes)"),
    EnvVar("SNIPER_HTTP_HOST", "127.0.0.1", "Address `sniper serve` listens on"),
    EnvVar("SNIPER_HTTP_PORT", "8080", "Port `sniper serve` listens on"),
    EnvVar("SNIPER_DEV_IDENTITY_ON_NETWORK", "0",
           "DANGEROUS. 1 = `sniper serve` accepts the development identity (no KINDE_DOMAIN) on a non-loopback "
           "address, which it refuses otherwise: anyone reaching the port acts as SNIPER_USER. Only for a container "
           "whose port is published on 127.0.0.1 (docker/compose.yaml)"),
    EnvVar("SNIPER_CORS_ORIGINS", "(unset)", "Comma-separated browser origins allowed to call the API "
           "(e.g. https://app.example.com); unset = no cross-origin access"),
    EnvVar("SNIPER_RATE_LIMIT_PER_MINUTE", "600", "Requests one user may make per minute (sliding window); 0 = no limit"),
    EnvVar("SNIPER_MAX_BODY_BYTES", "65536", "Largest request body the API accepts (413 above it)"),
    EnvVar("SNIPER_HTTP_HEADER_TIMEOUT_SECONDS", "10", "A request head must be complete this long after the connection "
           "opened or its previous answer; else the connection is closed"),
    EnvVar("SNIPER_HTTP_BODY_TIMEOUT_SECONDS", "30", "A request body must be complete this long after its head; else "
           "the connection is closed"),
    EnvVar("SNIPER_HTTP_KEEP_ALIVE_SECONDS", "5", "An idle keep-alive connection is closed after this long"),
    EnvVar("SNIPER_HTTP_MAX_CONNECTIONS", "2000", "Open connections (live streams included) past which requests answer 503"),
    EnvVar("SNIPER_MAX_STREAMS_PER_USER", "5", "Live streams (/api/v1/stream) one user may hold open on one API process; "
           "past it a new one closes with code 1008"),
    EnvVar("SNIPER_MAX_STREAMS", "1000", "Live streams one API process holds open in all; past it a new one closes "
           "with code 1013 (try again later)"),
    EnvVar("SNIPER_MARKET", "replay", "What `sniper worker` trades on: replay (the scenario, paper fills) or mexc "
           "(MEXC's calendar and prices; paper fills unless SNIPER_LIVE=1)"),
    EnvVar("SNIPER_LIVE", "0", "1 = `sniper worker` places real orders on MEXC with MEXC_API_KEY (needs SNIPER_MARKET=mexc)"),
    EnvVar("SNIPER_REPLAY_SPEED", "60", "How many times faster than real time the worker replays a scenario"),
    EnvVar("SNIPER_PAPER_WALLET", "1000", "What a paper account starts with, in the trader's quote asset: the paper "
           "balances (`GET /api/v1/balances`, `sniper status`) are this plus the paper trades' results"),
    EnvVar("SNIPER_PRICE_POLL_MS", "1000", "How often the risk manager reads the prices of open positions"),
    EnvVar("SNIPER_YOUNG_PRICE_POLL_MS", "200", "How often it reads them while a position is young (a listing's first "
           "minutes), when the WebSocket has not just pushed one"),
    EnvVar("SNIPER_YOUNG_POSITION_SECONDS", "180", "How long a position counts as young"),
    EnvVar("SNIPER_SAFETY_POLL_SECONDS", "5", "How often the safety monitor checks losses, collapses and error bursts"),
    EnvVar("SNIPER_RECONCILE_POLL_SECONDS", "60", "How often the worker reconciles with the exchange (also at start)"),
    EnvVar("SNIPER_ERROR_BURST", "5", "Exchange errors within SNIPER_ERROR_WINDOW_SECONDS that trip the global emergency stop"),
    EnvVar("SNIPER_ERROR_WINDOW_SECONDS", "60", "The window of SNIPER_ERROR_BURST"),
    EnvVar("SNIPER_PRICE_COLLAPSE_PERCENT", "50", "A fall this far below a position's entry trips its user's emergency stop"),
    EnvVar("SNIPER_STOP_GRACE_SECONDS", "60", "On SIGTERM, how long snipes and ticks in flight may take to finish"),
    EnvVar("SNIPER_WORKER_ID", "(host-pid)", "Name of this worker in heartbeats and logs"),
    EnvVar("SNIPER_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR: the log of `sniper serve` and `sniper worker` "
           "(on stderr); unset, the other commands log warnings and errors only"),
    EnvVar("SNIPER_LOG_FORMAT", "text", "text (time level logger: message) or json (one object per line: time, level, "
           "logger, message, exception)"),
    EnvVar("SNIPER_ACCESS_LOG", "1", "1 = `sniper serve` logs one INFO line per request: method, path (never the "
           "query), status, duration in ms; 0 = off"),
    EnvVar("MEXC_BASE_URL", "https://api.mexc.com", "MEXC REST base URL (spot v3)"),
    EnvVar("MEXC_WEB_URL", "https://www.mexc.com", "MEXC web base URL (new-coin calendar, symbolsV2)"),
    EnvVar("MEXC_WS_URL", "wss://wbs-api.mexc.com/ws", "MEXC WebSocket market streams (protobuf)"),
    EnvVar("MEXC_API_KEY", "(unset)", "MEXC API key; with no keys only paper trading is possible"),
    EnvVar("MEXC_SECRET_KEY", "(unset)", "MEXC API secret; never printed or logged"),
    EnvVar("MEXC_RECV_WINDOW_MS", "5000", "recvWindow sent with signed MEXC calls (1-60000)"),
    EnvVar("SNIPER_ENV", "development",
           "development or production; production refuses the development identity and needs ENCRYPTION_KEY and KINDE_*"),
    EnvVar("ENCRYPTION_KEY", "(unset)", "Key sealing users' MEXC credentials (AES-256-GCM): VERSION:BASE64 of 32 bytes; "
           "unset in development = a key file next to the SQLite database"),
    EnvVar("ENCRYPTION_OLD_KEYS", "(unset)", "Earlier keys still needed to open old rows, VERSION:BASE64,...; "
           "`sniper keys rotate` moves every row to ENCRYPTION_KEY"),
    EnvVar("KINDE_DOMAIN", "(unset)", "Kinde business domain, e.g. sniper.kinde.com (issuer https://<domain>); "
           "unset = the local development identity (refused in production)"),
    EnvVar("KINDE_ISSUER_URL", "(unset)", "Alias of KINDE_DOMAIN (the seed system's name): the issuer's URL, "
           "e.g. https://sniper.kinde.com, read only when KINDE_DOMAIN is unset; both set and different is refused"),
    EnvVar("KINDE_AUDIENCE", "(unset)", "Audience API access tokens must carry (required with KINDE_DOMAIN)"),
    EnvVar("KINDE_CLIENT_ID", "(unset)", "Kinde application client id, for the browser sign-in"),
    EnvVar("KINDE_CLIENT_SECRET", "(unset)", "Kinde application client secret; never printed or logged"),
    EnvVar("KINDE_REDIRECT_URL", "(unset)", "Sign-in callback URL registered in Kinde, e.g. https://sniper.example/auth/callback"),
    EnvVar("KINDE_JWKS_MAX_AGE_SECONDS", "300", "Longest Kinde's signing keys are trusted without fetching them again: "
           "a key Kinde withdrew stops opening the API within this age (60-86400)"),
    EnvVar("KINDE_LEGACY_SUBJECTS", "(unset)", "Kinde user ids (`sub`) whose data was stored before user ids became "
           "`kinde:<sub>`; they keep their bare id. Comma-separated; never SNIPER_USER or a reserved id"),
    EnvVar("OPENAI_API_KEY", "(unset)", "OpenAI key for the AI analyst (advisory listing scores); unset = OpenAI not used"),
    EnvVar("OPENAI_BASE_URL", "https://api.openai.com/v1", "OpenAI API base URL"),
    EnvVar("OPENAI_MODEL", "gpt-4o-mini", "OpenAI chat model of the analyst"),
    EnvVar("ANTHROPIC_API_KEY", "(unset)", "Anthropic key for the AI analyst; unset = Anthropic not used"),
    EnvVar("ANTHROPIC_BASE_URL", "https://api.anthropic.com", "Anthropic API base URL"),
    EnvVar("ANTHROPIC_MODEL", "claude-3-5-haiku-latest", "Anthropic model of the analyst"),
    EnvVar("PERPLEXITY_API_KEY", "(unset)", "Perplexity key for the AI analyst (OpenAI-compatible API); unset = not used"),
    EnvVar("PERPLEXITY_BASE_URL", "https://api.perplexity.ai", "Perplexity API base URL"),
    EnvVar("PERPLEXITY_MODEL", "sonar", "Perplexity model of the analyst"),
    EnvVar("COHERE_API_KEY", "(unset)", "Cohere key for embeddings (similar past listings); unset = no similarity search"),
    EnvVar("COHERE_BASE_URL", "https://api.cohere.com", "Cohere API base URL"),
    EnvVar("COHERE_MODEL", "embed-v4.0", "Cohere embedding model"),
    EnvVar("SNIPER_AI_TIMEOUT_SECONDS", "6", "Time budget of one listing analysis, every provider tried included; then rules"),
    EnvVar("SNIPER_AI_CALL_TIMEOUT_SECONDS", "3", "Time budget of one AI provider call (at most SNIPER_AI_TIMEOUT_SECONDS)"),
    EnvVar("SNIPER_AI_DAILY_BUDGET_USD", "1", "AI spend per UTC day; once spent, paid providers are skipped (rules only)"),
    EnvVar("OTEL_EXPORTER_OTLP_ENDPOINT", "(unset)", "OTLP/HTTP collector base URL (traces to /v1/traces, metrics to "
           "/v1/metrics), e.g. http://127.0.0.1:4318; unset = nothing exported"),
    EnvVar("OTEL_SERVICE_NAME", "mexc-sniper", "service.name on every span and metric"),
    EnvVar("SNIPER_METRICS_PORT", "0", "Port of the worker's Prometheus /metrics server; 0 = off"),
    EnvVar("SNIPER_ALERT_WEBHOOK_URL", "(unset)", "Alerts POSTed here as JSON {key, severity, title, text, at, user_id}"),
    EnvVar("SNIPER_ALERT_WEBHOOK_SECRET", "(unset)",
           "Shared secret: alert webhook bodies are signed, X-Sniper-Signature: sha256=<hex HMAC-SHA256 of the body>"),
    EnvVar("SLACK_WEBHOOK_URL", "(unset)", "Slack incoming-webhook URL for alerts"),
    EnvVar("TELEGRAM_BOT_TOKEN", "(unset)", "Telegram bot token: the control bot (in `sniper worker`, or `sniper telegram`), "
           "and alerts with TELEGRAM_CHAT_ID"),
    EnvVar("TELEGRAM_CHAT_ID", "(unset)", "Telegram chat the bot sends alerts to"),
    EnvVar("TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL"),
    EnvVar("TELEGRAM_WEBHOOK_SECRET", "(unset)", "Webhook mode of the control bot: the API takes Telegram's updates at "
           "POST /api/v1/telegram/webhook (X-Telegram-Bot-Api-Secret-Token must match) and no worker long-polls"),
    EnvVar("SNIPER_NOTIFY", "1", "1 = the worker sends traders' notifications (their channels, GET/PUT "
           "/api/v1/notifications); 0 = it leaves them queued for another worker"),
    EnvVar("SNIPER_NOTIFY_TIMEOUT_SECONDS", "5", "A notification channel that has not answered this long is cut off "
           "(the message is retried)"),
    EnvVar("SNIPER_NOTIFY_ATTEMPTS", "5", "Tries per notification before it is recorded as undelivered"),
    EnvVar("SNIPER_NOTIFY_RETRY_SECONDS", "2", "Wait before a notification's second try; doubles each try, at most 5 min"),
    EnvVar("SNIPER_NOTIFY_PER_SECOND", "1", "Notifications per second to one chat or channel of one user "
           "(Telegram asks for about 1 per chat)"),
    EnvVar("SNIPER_SMTP_URL", "(unset)", "SMTP server for e-mail notifications: smtp://user:password@host:port, "
           "smtps://... (TLS) or smtp+starttls://..."),
    EnvVar("SNIPER_SMTP_FROM", "(unset)", "Sender address of e-mail notifications (default: the SMTP user)"),
)

SECRET_VARS = frozenset({"ENCRYPTION_KEY", "ENCRYPTION_OLD_KEYS", "KINDE_CLIENT_SECRET",
                         "MEXC_SECRET_KEY", "MEXC_API_KEY", "DATABASE_URL", "NEON_DATABASE_URL", "REDIS_URL",
                         "SNIPER_ALERT_WEBHOOK_URL",
                         "SNIPER_ALERT_WEBHOOK_SECRET", "SLACK_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "SNIPER_SMTP_URL",
                         "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PERPLEXITY_API_KEY", "COHERE_API_KEY"})

# Variables holding a URL (or a list of them): `sniper config` shows them through mask_url.
URL_VARS = frozenset({v.name for v in ENV_VARS if v.name.endswith(("_URL", "_ENDPOINT"))} | {"SNIPER_CORS_ORIGINS"})


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
class ObservabilitySettings:
    """Telemetry export and alert channels; each channel is on when its settings are given."""

    service_name: str = "mexc-sniper"
    otlp_endpoint: str | None = None
    metrics_port: int = 0  # 0: no standalone /metrics server
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_secret: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str | None = field(default=None, repr=False)  # webhook mode of the control bot


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Traders' notifications (application/notifications.py): delivery limits and the SMTP server."""

    enabled: bool = True
    timeout: float = 5.0
    attempts: int = 5
    first_retry: timedelta = timedelta(seconds=2)
    per_second: float = 1.0
    smtp_url: str | None = field(default=None, repr=False)
    smtp_from: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    market: str = "replay"  # replay | mexc
    live: bool = False
    replay_speed: float = 60.0
    price_poll: timedelta = timedelta(seconds=1)
    young_price_poll: timedelta = timedelta(milliseconds=200)
    young_position: timedelta = timedelta(minutes=3)
    safety_poll: timedelta = timedelta(seconds=5)
    reconcile_poll: timedelta = timedelta(minutes=1)
    error_burst: int = 5
    error_window: timedelta = timedelta(minutes=1)
    price_collapse_percent: Decimal = Decimal("50")
    stop_grace: timedelta = timedelta(seconds=60)
    worker_id: str = ""
    paper_wallet: Decimal = Decimal("1000")  # a paper account's starting quote (SNIPER_PAPER_WALLET)


@dataclass(frozen=True, slots=True)
class AiProviderSettings:
    api_key: str = field(default="", repr=False)
    base_url: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class AiSettings:
    """AI enrichment (entrypoints/ai.py): each provider is used only when its key is set."""

    openai: AiProviderSettings = AiProviderSettings(base_url="https://api.openai.com/v1", model="gpt-4o-mini")
    anthropic: AiProviderSettings = AiProviderSettings(base_url="https://api.anthropic.com", model="claude-3-5-haiku-latest")
    perplexity: AiProviderSettings = AiProviderSettings(base_url="https://api.perplexity.ai", model="sonar")
    cohere: AiProviderSettings = AiProviderSettings(base_url="https://api.cohere.com", model="embed-v4.0")
    timeout: timedelta = timedelta(seconds=6)
    call_timeout: timedelta = timedelta(seconds=3)
    daily_budget_usd: Decimal = Decimal("1")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """`sniper serve`: where it listens, who may call it from a browser, and its limits."""

    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = 600
    max_body_bytes: int = 65_536
    # Slow clients (entrypoints/http/protocol.py): a request head must be complete this long after the
    # connection opened or its previous answer, a body this long after its head; idle keep-alive
    # connections close after keep_alive_seconds; past max_connections open ones, requests answer 503.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 2000
    max_streams_per_user: int = 5
    max_streams: int = 1000
    dev_identity_on_network: bool = False  # SNIPER_DEV_IDENTITY_ON_NETWORK: see entrypoints/http/serve.py
    access_log: bool = True  # SNIPER_ACCESS_LOG: one line per request (entrypoints/http/guards.py `traced`)


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Sign-in (Kinde) and the sealing of users' credentials (entrypoints/keys.py wires them)."""

    environment: str = "development"  # or "production"
    encryption_key: str = field(default="", repr=False)
    encryption_old_keys: str = field(default="", repr=False)
    kinde_issuer: str = ""  # https://<KINDE_DOMAIN>; empty = the development identity
    kinde_audience: str = ""
    kinde_client_id: str = ""
    kinde_client_secret: str = field(default="", repr=False)
    kinde_redirect_url: str = ""
    kinde_jwks_max_age: timedelta = timedelta(seconds=300)
    kinde_legacy_subjects: frozenset[str] = frozenset()

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def sign_in_configured(self) -> bool:
        return bool(self.kinde_issuer and self.kinde_client_id and self.kinde_client_secret and self.kinde_redirect_url)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What entrypoints/logs.py configures: the level (None: the command's own default) and the format."""

    level: str | None = None
    format: str = "text"  # or "json"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    scenario_path: Path = BUNDLED_SCENARIO
    calendar_poll: timedelta = timedelta(seconds=30)
    state_poll: timedelta = timedelta(seconds=10)
    timing: SnipeTiming = field(default_factory=SnipeTiming)
    user_id: str = "local"
    worker: WorkerSettings = field(default_factory=lambda: WorkerSettings())
    redis_url: str | None = None
    redis_prefix: str = "sniper"
    redis_max_connections: int = 100
    redis_pool_timeout: timedelta = timedelta(seconds=2)
    mexc: MexcSettings = field(default_factory=MexcSettings)
    ai: AiSettings = field(default_factory=AiSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    log: LogSettings = field(default_factory=LogSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    # SCHED_FIFO priority for the last milliseconds before a launch and the sends at it (0: off;
    # adapters/clock.py SystemClock): needs root or CAP_SYS_NICE, else a warning and normal priority.
    launch_priority: int = 1


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


def _flag(env: Mapping[str, str], name: str, default: str = "0") -> bool:
    """An on/off setting, `default` unless set: 0 or 1 (also false/true, no/yes)."""
    raw = env.get(name, default).strip().lower() or default
    if raw not in ("0", "1", "false", "true", "no", "yes", ""):
        raise ConfigurationError(f"{name} must be 0 or 1, got {raw!r}")
    return raw in ("1", "true", "yes")


def _database_url(env: Mapping[str, str]) -> str:
    """The store's URL, its driver named: libpq's postgres:// and postgresql:// mean asyncpg, and
    their sslmode= and friends are checked here as make_engine will translate them."""
    from adapters.eventstore.database import DatabaseUrlError, canonical_database_url

    def canonical(name: str, url: str) -> str:
        if url == "memory://":
            return url
        if url.startswith("sqlite://"):
            raise ConfigurationError(
                f"{name} must name the aiosqlite driver: use sqlite+aiosqlite:///FILE, got {_shown(name, url)}"
            )
        if url.startswith("sqlite+aiosqlite:///") and len(url) > len("sqlite+aiosqlite:///"):
            return url
        if url.startswith(("postgresql+asyncpg://", "postgresql://", "postgres://")) and not url.endswith("://"):
            try:
                return canonical_database_url(url)
            except DatabaseUrlError as exc:
                raise ConfigurationError(f"{name} {exc}") from None
        raise ConfigurationError(
            f"{name} must be sqlite+aiosqlite:///FILE, postgresql://... (or postgres://, postgresql+asyncpg://) "
            f"or memory://, got {_shown(name, url)}"
        )

    name, url = _aliased(env, "DATABASE_URL", "NEON_DATABASE_URL", canonical)
    if url:
        return url
    return canonical(name, env.get(name, DEFAULT_DATABASE_URL).strip())  # the default; set but empty is refused


def _aliased(env: Mapping[str, str], name: str, alias: str, read: Callable[[str, str], str]) -> tuple[str, str]:
    """(the variable used, its value read by `read`): `name`, else `alias` (the seed system's name
    for the same setting) when `name` is unset or empty; ("name", "") when neither is set. Both
    set to different values is refused: which one was meant cannot be told."""
    value, other = env.get(name, "").strip(), env.get(alias, "").strip()
    if not other:
        return name, read(name, value) if value else ""
    if not value:
        return alias, read(alias, other)
    if read(name, value) != read(alias, other):
        raise ConfigurationError(f"{name} and {alias} (its alias) are both set and differ: unset one")
    return name, read(name, value)


def _shown(name: str, value: str) -> str:
    """A bad value as an error echoes it: through mask_url; a secret variable's value that is not
    even a URL is not echoed at all (it may be the bare password)."""
    if name in SECRET_VARS and "://" not in value:
        return "a value that is not a URL (not shown: it may hold a secret)"
    return repr(mask_url(value))


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    url = env.get(name, default).strip().rstrip("/")
    if not url.startswith(schemes) or len(url.split("://", 1)[1]) == 0:
        kinds = " or ".join(s.rstrip(":/") for s in schemes)
        raise ConfigurationError(f"{name} must be a {kinds} URL, got {_shown(name, url)}")
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


def _ai_provider(env: Mapping[str, str], prefix: str, default: AiProviderSettings) -> AiProviderSettings:
    model = env.get(f"{prefix}_MODEL", default.model).strip()
    if not model or len(model) > 200 or any(c.isspace() for c in model):
        raise ConfigurationError(f"{prefix}_MODEL must be 1-200 characters without spaces, got {model!r}")
    key = env.get(f"{prefix}_API_KEY", "").strip()
    if any(c.isspace() for c in key):
        raise ConfigurationError(f"{prefix}_API_KEY must not contain spaces")  # never echo a key
    return AiProviderSettings(key, _url(env, f"{prefix}_BASE_URL", default.base_url, ("https://", "http://")), model)


def _ai(env: Mapping[str, str]) -> AiSettings:
    d = AiSettings()
    total = _number(env, "SNIPER_AI_TIMEOUT_SECONDS", "6", 0.1, 600)
    call = _number(env, "SNIPER_AI_CALL_TIMEOUT_SECONDS", "3", 0.1, 600)
    if call > total:
        raise ConfigurationError(f"SNIPER_AI_CALL_TIMEOUT_SECONDS ({call:g}) must not exceed SNIPER_AI_TIMEOUT_SECONDS ({total:g})")
    raw = env.get("SNIPER_AI_DAILY_BUDGET_USD", "1").strip()
    try:
        budget = Decimal(raw)
    except ArithmeticError:
        budget = Decimal("NaN")
    if not budget.is_finite() or not (0 <= budget <= 1_000_000):
        raise ConfigurationError(f"SNIPER_AI_DAILY_BUDGET_USD must be a decimal amount between 0 and 1000000, got {raw!r}")
    return AiSettings(
        openai=_ai_provider(env, "OPENAI", d.openai),
        anthropic=_ai_provider(env, "ANTHROPIC", d.anthropic),
        perplexity=_ai_provider(env, "PERPLEXITY", d.perplexity),
        cohere=_ai_provider(env, "COHERE", d.cohere),
        timeout=timedelta(seconds=total),
        call_timeout=timedelta(seconds=call),
        daily_budget_usd=budget,
    )


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    """The logging variables alone: every command configures its log before it reads the rest."""
    env = os.environ if env is None else env
    level = env.get("SNIPER_LOG_LEVEL", "").strip().upper() or None
    if level not in (None, "DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigurationError(f"SNIPER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_format = env.get("SNIPER_LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise ConfigurationError(f"SNIPER_LOG_FORMAT must be text or json, got {log_format!r}")
    return LogSettings(level=level, format=log_format)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    scenario = env.get("SNIPER_SCENARIO", "").strip()
    scenario_path = Path(scenario) if scenario else BUNDLED_SCENARIO
    lease_ttl = timedelta(seconds=_number(env, "SNIPER_LEASE_TTL_SECONDS", "15", 1, 3600))
    # MEXC takes a signed order in until its timestamp is recvWindow old, and takes a timestamp up
    # to 1 s ahead of its clock: that long after a send starts, it is in or refused.
    recv_window = timedelta(milliseconds=_number(env, "MEXC_RECV_WINDOW_MS", "5000", 1, 60_000, integer=True))
    send_in_flight = recv_window + timedelta(seconds=1)
    floor = SnipeTiming(send_in_flight=send_in_flight, lease_ttl=timedelta(days=1)).lease_floor
    if lease_ttl < floor:
        raise ConfigurationError(
            f"SNIPER_LEASE_TTL_SECONDS={lease_ttl.total_seconds():g} is too short for MEXC_RECV_WINDOW_MS="
            f"{recv_window // timedelta(milliseconds=1)}: a send starts only while the snipe's lease holds for its time "
            f"in flight (recvWindow + 1 s), so the lease must be at least {floor.total_seconds():g} s"
        )
    timing = SnipeTiming(
        lead_window=timedelta(minutes=_number(env, "SNIPER_LEAD_WINDOW_MINUTES", "210", 1, 7 * 24 * 60)),
        prepare_ahead=timedelta(seconds=_number(env, "SNIPER_PREPARE_AHEAD_SECONDS", "2", 0, 600)),
        snipe_window=timedelta(seconds=_number(env, "SNIPER_SNIPE_WINDOW_SECONDS", "30", 0.1, 3600)),
        retry_interval=timedelta(milliseconds=_number(env, "SNIPER_RETRY_INTERVAL_MS", "20", 1, 10_000)),
        expiry_grace=timedelta(seconds=_number(env, "SNIPER_EXPIRY_GRACE_SECONDS", "300", 0, 86_400)),
        lease_ttl=lease_ttl,
        send_in_flight=send_in_flight,
        bracket_sends=int(_number(env, "SNIPER_BRACKET_SENDS", "40", 1, 500, integer=True)),
        launch_order_budget=int(_number(env, "SNIPER_LAUNCH_ORDER_BUDGET", "400", 2, 500, integer=True)),
    )
    return Settings(
        database_url=_database_url(env),
        scenario_path=scenario_path,
        calendar_poll=timedelta(seconds=_number(env, "SNIPER_CALENDAR_POLL_SECONDS", "30", 1, 3600)),
        state_poll=timedelta(seconds=_number(env, "SNIPER_STATE_POLL_SECONDS", "10", 0.1, 3600)),
        timing=timing,
        user_id=_user(env),
        worker=_worker(env),
        redis_url=_redis_url(env),
        redis_prefix=_redis_prefix(env),
        redis_max_connections=int(_number(env, "REDIS_MAX_CONNECTIONS", "100", 2, 100_000, integer=True)),
        redis_pool_timeout=timedelta(seconds=_number(env, "REDIS_POOL_TIMEOUT_SECONDS", "2", 0.01, 60)),
        mexc=_mexc(env),
        ai=_ai(env),
        observability=_observability(env),
        http=_http(env),
        security=_security(env),
        log=log_settings(env),
        notify=_notify(env),
        launch_priority=int(_number(env, "SNIPER_LAUNCH_PRIORITY", "1", 0, 99, integer=True)),
    )


def _user(env: Mapping[str, str]) -> str:
    from application.identity import operator_user_id_problem

    user = env.get("SNIPER_USER", "local").strip()
    problem = operator_user_id_problem(user)
    if problem:
        raise ConfigurationError(f"SNIPER_USER {problem}, got {user!r}")
    return user


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")) or url.endswith("://"):
        raise ConfigurationError(
            f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {_shown('REDIS_URL', url)}"
        )
    return url


def _redis_prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("REDIS_PREFIX", "sniper").strip()
    if not prefix or len(prefix) > 64 or any(c.isspace() or c == ":" for c in prefix):
        raise ConfigurationError(f"REDIS_PREFIX must be 1-64 characters without spaces or ':', got {prefix!r}")
    return prefix


def _worker(env: Mapping[str, str]) -> WorkerSettings:
    market = env.get("SNIPER_MARKET", "replay").strip().lower()
    if market not in ("replay", "mexc"):
        raise ConfigurationError(f"SNIPER_MARKET must be replay or mexc, got {market!r}")
    live = _flag(env, "SNIPER_LIVE")
    if live and market != "mexc":
        raise ConfigurationError("SNIPER_LIVE=1 needs SNIPER_MARKET=mexc: a replay is never traded live")
    worker_id = env.get("SNIPER_WORKER_ID", "").strip()
    if worker_id and (len(worker_id) > 100 or any(c.isspace() or c in "/:" for c in worker_id)):
        raise ConfigurationError(f"SNIPER_WORKER_ID must be 1-100 characters without spaces, '/' or ':', got {worker_id!r}")
    _number(env, "SNIPER_PRICE_COLLAPSE_PERCENT", "50", 1, 100)  # validated; kept exact below
    return WorkerSettings(
        market=market,
        live=live,
        replay_speed=_number(env, "SNIPER_REPLAY_SPEED", "60", 0.01, 100_000),
        price_poll=timedelta(milliseconds=_number(env, "SNIPER_PRICE_POLL_MS", "1000", 50, 600_000)),
        young_price_poll=timedelta(milliseconds=_number(env, "SNIPER_YOUNG_PRICE_POLL_MS", "200", 50, 600_000)),
        young_position=timedelta(seconds=_number(env, "SNIPER_YOUNG_POSITION_SECONDS", "180", 0, 86_400)),
        safety_poll=timedelta(seconds=_number(env, "SNIPER_SAFETY_POLL_SECONDS", "5", 0.1, 3600)),
        reconcile_poll=timedelta(seconds=_number(env, "SNIPER_RECONCILE_POLL_SECONDS", "60", 1, 86_400)),
        error_burst=int(_number(env, "SNIPER_ERROR_BURST", "5", 1, 10_000, integer=True)),
        error_window=timedelta(seconds=_number(env, "SNIPER_ERROR_WINDOW_SECONDS", "60", 1, 86_400)),
        price_collapse_percent=Decimal(env.get("SNIPER_PRICE_COLLAPSE_PERCENT", "50").strip()),
        stop_grace=timedelta(seconds=_number(env, "SNIPER_STOP_GRACE_SECONDS", "60", 0, 3600)),
        worker_id=worker_id,
        paper_wallet=_paper_wallet(env),
    )


def _paper_wallet(env: Mapping[str, str]) -> Decimal:
    _number(env, "SNIPER_PAPER_WALLET", "1000", 0, 1_000_000_000_000)  # validated; kept exact below
    return Decimal(env.get("SNIPER_PAPER_WALLET", "1000").strip())


def _observability(env: Mapping[str, str]) -> ObservabilitySettings:
    def optional_url(name: str) -> str | None:
        raw = env.get(name, "").strip()
        if not raw:
            return None
        if name in SECRET_VARS:  # a webhook URL is a credential: never echo it
            if not raw.startswith(("https://", "http://")) or raw.endswith("://"):
                raise ConfigurationError(f"{name} must be an https or http URL")
            return raw
        return _url(env, name, "", ("https://", "http://"))

    service = env.get("OTEL_SERVICE_NAME", "mexc-sniper").strip()
    if not service or len(service) > 200 or any(c.isspace() for c in service):
        raise ConfigurationError(f"OTEL_SERVICE_NAME must be 1-200 characters without spaces, got {service!r}")
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip() or None
    chat = env.get("TELEGRAM_CHAT_ID", "").strip() or None
    if chat and not token:  # a token alone is the control bot's (entrypoints/telegram.py), without operator alerts
        raise ConfigurationError("TELEGRAM_BOT_TOKEN must be set too: Telegram alerts need a bot token and a chat id")
    if token is not None and (":" not in token or any(c.isspace() or c == "/" for c in token)):
        raise ConfigurationError("TELEGRAM_BOT_TOKEN must look like 123456:ABC... (as BotFather gives it)")
    if chat is not None and (len(chat) > 100 or any(c.isspace() for c in chat)):
        raise ConfigurationError(f"TELEGRAM_CHAT_ID must be a chat id or @channel name without spaces, got {chat!r}")
    secret = env.get("SNIPER_ALERT_WEBHOOK_SECRET", "").strip() or None
    webhook = optional_url("SNIPER_ALERT_WEBHOOK_URL")
    if secret is not None and webhook is None:
        raise ConfigurationError("SNIPER_ALERT_WEBHOOK_SECRET is set but SNIPER_ALERT_WEBHOOK_URL is not")
    return ObservabilitySettings(
        service_name=service,
        otlp_endpoint=optional_url("OTEL_EXPORTER_OTLP_ENDPOINT"),
        metrics_port=int(_number(env, "SNIPER_METRICS_PORT", "0", 0, 65_535, integer=True)),
        alert_webhook_url=webhook,
        alert_webhook_secret=secret,
        slack_webhook_url=optional_url("SLACK_WEBHOOK_URL"),
        telegram_bot_token=token,
        telegram_chat_id=chat,
        telegram_api_url=_url(env, "TELEGRAM_API_URL", "https://api.telegram.org", ("https://", "http://")),
        telegram_webhook_secret=_telegram_webhook_secret(env, token),
    )


def _telegram_webhook_secret(env: Mapping[str, str], token: str | None) -> str | None:
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
    if secret is None:
        return None
    if token is None:
        raise ConfigurationError("TELEGRAM_WEBHOOK_SECRET is set but TELEGRAM_BOT_TOKEN is not")
    # Telegram's secret_token: 1-256 characters, letters, digits, _ and - only.
    if len(secret) > 256 or any(not (c.isascii() and (c.isalnum() or c in "_-")) for c in secret):
        raise ConfigurationError("TELEGRAM_WEBHOOK_SECRET must be 1-256 letters, digits, _ or - (Telegram's secret_token)")
    return secret


def _notify(env: Mapping[str, str]) -> NotifySettings:
    smtp = env.get("SNIPER_SMTP_URL", "").strip() or None
    if smtp is not None and not smtp.startswith(("smtp://", "smtps://", "smtp+starttls://")):
        raise ConfigurationError("SNIPER_SMTP_URL must be smtp://, smtps:// or smtp+starttls://user:password@host:port")
    sender = env.get("SNIPER_SMTP_FROM", "").strip() or None
    if sender is not None and ("@" not in sender or any(c.isspace() for c in sender)):
        raise ConfigurationError(f"SNIPER_SMTP_FROM must be an e-mail address, got {sender!r}")
    return NotifySettings(
        enabled=_flag(env, "SNIPER_NOTIFY", default="1"),
        timeout=_number(env, "SNIPER_NOTIFY_TIMEOUT_SECONDS", "5", 0.1, 300),
        attempts=int(_number(env, "SNIPER_NOTIFY_ATTEMPTS", "5", 1, 100, integer=True)),
        first_retry=timedelta(seconds=_number(env, "SNIPER_NOTIFY_RETRY_SECONDS", "2", 0.01, 3600)),
        per_second=_number(env, "SNIPER_NOTIFY_PER_SECOND", "1", 0.01, 1000),
        smtp_url=smtp,
        smtp_from=sender,
    )


def _http(env: Mapping[str, str]) -> HttpSettings:
    host = env.get("SNIPER_HTTP_HOST", "127.0.0.1").strip()
    if not host or len(host) > 255 or any(c.isspace() or c in "/@" for c in host):
        raise ConfigurationError(f"SNIPER_HTTP_HOST must be a host name or address, got {host!r}")
    origins = []
    for raw in env.get("SNIPER_CORS_ORIGINS", "").split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        if origin != "*" and (not origin.startswith(("https://", "http://")) or "/" in origin.split("://", 1)[1]
                              or "@" in origin):  # an origin has no userinfo: that would be a password
            raise ConfigurationError(
                "SNIPER_CORS_ORIGINS must be comma-separated origins like https://app.example.com, "
                f"got {_shown('SNIPER_CORS_ORIGINS', raw.strip())}"
            )
        origins.append(origin)
    return HttpSettings(
        host=host,
        port=int(_number(env, "SNIPER_HTTP_PORT", "8080", 1, 65_535, integer=True)),
        cors_origins=tuple(origins),
        rate_limit_per_minute=int(_number(env, "SNIPER_RATE_LIMIT_PER_MINUTE", "600", 0, 1_000_000, integer=True)),
        max_body_bytes=int(_number(env, "SNIPER_MAX_BODY_BYTES", "65536", 1024, 100_000_000, integer=True)),
        header_timeout_seconds=_number(env, "SNIPER_HTTP_HEADER_TIMEOUT_SECONDS", "10", 0.1, 3600),
        body_timeout_seconds=_number(env, "SNIPER_HTTP_BODY_TIMEOUT_SECONDS", "30", 0.1, 3600),
        keep_alive_seconds=_number(env, "SNIPER_HTTP_KEEP_ALIVE_SECONDS", "5", 0.1, 3600),
        max_connections=int(_number(env, "SNIPER_HTTP_MAX_CONNECTIONS", "2000", 1, 1_000_000, integer=True)),
        max_streams_per_user=int(_number(env, "SNIPER_MAX_STREAMS_PER_USER", "5", 1, 10_000, integer=True)),
        max_streams=int(_number(env, "SNIPER_MAX_STREAMS", "1000", 1, 1_000_000, integer=True)),
        dev_identity_on_network=_flag(env, "SNIPER_DEV_IDENTITY_ON_NETWORK"),
        access_log=_flag(env, "SNIPER_ACCESS_LOG", default="1"),
    )


def _security(env: Mapping[str, str]) -> SecuritySettings:
    from adapters.kinde.verifier import kinde_issuer
    from adapters.security.sealing import KeyRing

    environment = env.get("SNIPER_ENV", "development").strip().lower() or "development"
    if environment not in ("development", "production"):
        raise ConfigurationError(f"SNIPER_ENV must be development or production, got {environment!r}")
    key = env.get("ENCRYPTION_KEY", "").strip()
    old_keys = env.get("ENCRYPTION_OLD_KEYS", "").strip()
    if key:
        KeyRing.parse(key, old_keys)  # a bad key stops the start here, naming the variable (never the key)
    elif old_keys:
        raise ConfigurationError("ENCRYPTION_OLD_KEYS needs ENCRYPTION_KEY: the old keys only open, the current one seals")
    def issuer_of(name: str, value: str) -> str:
        issuer = kinde_issuer(value)
        if name == "KINDE_ISSUER_URL" and not value.startswith(("https://", "http://")) or issuer.endswith("://"):
            raise ConfigurationError(
                f"{name} must be the issuer's URL like https://sniper.kinde.com, got {_shown(name, value)}"
            )
        if not issuer.startswith(("https://", "http://")):
            raise ConfigurationError(f"{name} must be a host name like sniper.kinde.com, got {_shown(name, value)}")
        return issuer

    kinde_var, issuer = _aliased(env, "KINDE_DOMAIN", "KINDE_ISSUER_URL", issuer_of)
    domain = env.get(kinde_var, "").strip()
    audience = env.get("KINDE_AUDIENCE", "").strip()
    client_id = env.get("KINDE_CLIENT_ID", "").strip()
    client_secret = env.get("KINDE_CLIENT_SECRET", "").strip()
    redirect = env.get("KINDE_REDIRECT_URL", "").strip()
    if environment == "production":
        if not key:
            raise ConfigurationError("SNIPER_ENV=production needs ENCRYPTION_KEY (VERSION:BASE64 of 32 random bytes)")
        if not issuer:
            raise ConfigurationError("SNIPER_ENV=production needs KINDE_DOMAIN: the development identity is refused")
        if not issuer.startswith("https://"):
            raise ConfigurationError(
                f"{kinde_var} must be served over https in production, got {_shown(kinde_var, domain)}"
            )
    if issuer and not audience:
        raise ConfigurationError("KINDE_AUDIENCE must be set with KINDE_DOMAIN: access tokens are checked for it")
    sign_in = {"KINDE_CLIENT_ID": client_id, "KINDE_CLIENT_SECRET": client_secret, "KINDE_REDIRECT_URL": redirect}
    if any(sign_in.values()) and not all(sign_in.values()):
        missing = ", ".join(name for name, value in sign_in.items() if not value)
        raise ConfigurationError(f"{missing} must be set too: the Kinde sign-in needs client id, secret and redirect URL")
    if any(sign_in.values()) and not issuer:
        raise ConfigurationError("KINDE_CLIENT_ID and friends need KINDE_DOMAIN")
    if redirect and not redirect.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"KINDE_REDIRECT_URL must be an http(s) URL, got {_shown('KINDE_REDIRECT_URL', redirect)}"
        )
    return SecuritySettings(
        environment=environment,
        encryption_key=key,
        encryption_old_keys=old_keys,
        kinde_issuer=issuer,
        kinde_audience=audience,
        kinde_client_id=client_id,
        kinde_client_secret=client_secret,
        kinde_redirect_url=redirect,
        kinde_jwks_max_age=timedelta(seconds=_number(env, "KINDE_JWKS_MAX_AGE_SECONDS", "300", 60, 86_400)),
        kinde_legacy_subjects=_legacy_subjects(env),
    )


def _legacy_subjects(env: Mapping[str, str]) -> frozenset[str]:
    from application.identity import operator_user_id_problem

    found = frozenset(s.strip() for s in env.get("KINDE_LEGACY_SUBJECTS", "").split(",") if s.strip())
    user = _user(env)
    for subject in sorted(found):
        problem = "is SNIPER_USER" if subject == user else operator_user_id_problem(subject)
        if problem:
            raise ConfigurationError(f"KINDE_LEGACY_SUBJECTS: {subject!r} {problem}")
    return found
