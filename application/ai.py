"""AI enrichment of listings: an advisory score with an explanation, and the past listings most
like a new one. Optional and never on the snipe path.

Ports: a ListingAnalyst scores a listing (OpenAI, Anthropic, Perplexity, or the deterministic
RuleAnalyst); Embeddings turns texts into vectors (Cohere). The use case EnrichListing tries the
analysts in order inside a strict time budget and a daily cost budget, falls back on any
timeout, error or malformed answer, always ends with the rules, and records the outcome as
ListingAnalysed in the stream analysis-<coin id> (not the listing's own stream, which the
calendar agent writes: no optimistic-concurrency race with it).

It never raises into its caller for AI failures: the worker starts it as a fire-and-forget
task, and trading never waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Protocol

from application.errors import ConcurrencyConflict
from application.ports import Cache, Clock, EventStore
from application.telemetry import NO_TELEMETRY, Telemetry
from domain.events import Cause, ListingAnalysed, ListingAnnounced, Recorded
from domain.listing import SYSTEM_USER, ListingAssessment

log = logging.getLogger(__name__)

RULES = "rules"
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_EMBEDDING_TTL = timedelta(days=30)
_SPEND_TTL = timedelta(days=2)


def analysis_stream(coin_id: str) -> str:
    return f"analysis-{coin_id}"


# --- values ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListingBrief:
    """What an analyst is told about one listing. `lead` is how long before its launch the
    listing was assessed; `pattern` and `confidence` are the domain's own assessment."""

    coin_id: str
    symbol: str
    coin_name: str
    launch_at: datetime
    lead: timedelta
    pattern: str
    confidence: Decimal
    in_window: bool = False
    project_text: str = ""
    similar: tuple[str, ...] = ()  # symbols of the most similar past listings, filled in by EnrichListing

    @classmethod
    def from_assessment(cls, coin_id: str, symbol: str, coin_name: str, launch_at: datetime,
                        assessment: ListingAssessment, project_text: str = "") -> ListingBrief:
        return cls(coin_id, symbol, coin_name, launch_at, assessment.lead, assessment.pattern,
                   assessment.confidence, assessment.in_window, project_text)

    def text(self) -> str:
        """The text whose embedding stands for this listing when looking for similar ones."""
        return listing_text(self.coin_name, self.symbol, self.project_text)


def listing_text(coin_name: str, symbol: str, project_text: str = "") -> str:
    return " ".join(part for part in (coin_name.strip(), f"({symbol})", project_text.strip()) if part)


@dataclass(frozen=True, slots=True)
class AiOpinion:
    score: Decimal  # 0..100: how promising the listing looks to snipe
    explanation: str
    provider: str
    cost_usd: Decimal = _ZERO
    latency: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class SimilarListing:
    coin_id: str
    symbol: str
    similarity: float  # cosine similarity, -1..1 (vectors stay out of the domain: floats)


class AnalystFailed(Exception):
    """A provider gave no usable opinion. The message names the provider and what went wrong,
    never a credential or a raw reply."""


def check_score(value: object) -> Decimal:
    """A score from an answer, as a whole-number Decimal 0..100; AnalystFailed otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise AnalystFailed(f"score must be a number, got {type(value).__name__}")
    try:
        score = Decimal(str(value).strip())
    except InvalidOperation:
        raise AnalystFailed("score must be a number") from None
    if not score.is_finite() or not (_ZERO <= score <= _HUNDRED):
        raise AnalystFailed("score must be between 0 and 100")
    return score.quantize(Decimal(1), ROUND_HALF_UP)


# --- ports -------------------------------------------------------------------------------

class ListingAnalyst(Protocol):
    """Scores a listing and explains the score. `paid` analysts are skipped once the day's
    budget is spent. Raises AnalystFailed (or anything else) when it has no usable answer."""

    name: str
    paid: bool

    async def assess(self, brief: ListingBrief) -> AiOpinion: ...


class Embeddings(Protocol):
    """Vectors for texts, one per text, in order. `name` identifies the model (vectors of two
    models are not comparable, so it is part of every cache key)."""

    name: str
    paid: bool

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


# --- the rules ----------------------------------------------------------------------------

class RuleAnalyst:
    """The deterministic last resort: no I/O, the score is the domain's own confidence."""

    name = RULES
    paid = False

    async def assess(self, brief: ListingBrief) -> AiOpinion:
        return self.opinion(brief)

    @staticmethod
    def opinion(brief: ListingBrief) -> AiOpinion:
        score = (brief.confidence * _HUNDRED).quantize(Decimal(1), ROUND_HALF_UP)
        score = min(max(score, _ZERO), _HUNDRED)
        window = "inside" if brief.in_window else "outside"
        explanation = (
            f"rules: state pattern '{brief.pattern}', launch in {_duration(brief.lead)} ({window} the lead window), "
            f"confidence {brief.confidence}"
        )
        if brief.similar:
            explanation += f"; similar past listings: {', '.join(brief.similar)}"
        return AiOpinion(score, explanation, RULES)


def _duration(lead: timedelta) -> str:
    seconds = int(lead.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}h{rest // 60:02d}m" if hours else f"{sign}{rest // 60}m{rest % 60:02d}s"


# --- the use case ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AiBudget:
    """Time: one enrichment takes at most `total` (embeddings and every analyst together), one
    provider call at most `per_call`. Money: paid providers are skipped once `daily_usd` is
    spent (per UTC day of the injected clock; the call that crosses it is not cut short)."""

    total: timedelta = timedelta(seconds=6)
    per_call: timedelta = timedelta(seconds=3)
    daily_usd: Decimal = Decimal("1")
    similar_k: int = 3
    # At most this many past listings are embedded per enrichment (one batch); the rest on
    # later runs, so a large history never blows the time budget.
    new_embeddings_per_run: int = 96
    max_corpus: int = 2000


@dataclass(frozen=True, slots=True)
class Enrichment:
    opinion: AiOpinion
    similar: list[SimilarListing] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    recorded: Recorded | None = None


@dataclass(slots=True)
class _Known:
    coin_id: str
    symbol: str
    text: str


class EnrichListing:
    """Score a listing with the first analyst that answers in time, find similar past
    listings, and record the opinion as ListingAnalysed. Advisory only; never raises for an
    AI failure (timeouts, HTTP errors, malformed answers, a spent budget, a broken cache)."""

    def __init__(
        self,
        analysts: Sequence[ListingAnalyst],
        embeddings: Embeddings | None,
        store: EventStore,
        clock: Clock,
        cache: Cache,
        budget: AiBudget = AiBudget(),
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        chain = [a for a in analysts if a.name != RULES]
        self.analysts: list[ListingAnalyst] = [*chain, RuleAnalyst()]
        self.embeddings, self.store, self.clock, self.cache = embeddings, store, clock, cache
        self.budget, self.telemetry = budget, telemetry
        self._known: dict[str, _Known] = {}
        self._read_up_to = 0

    async def __call__(self, brief: ListingBrief) -> Enrichment:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget.total.total_seconds()
        fallbacks: list[str] = []
        with self.telemetry.span("ai.enrich", symbol=brief.symbol):
            similar = await self._similar(brief, deadline, fallbacks)
            brief = replace(brief, similar=tuple(s.symbol for s in similar))
            opinion = await self._opinion(brief, deadline, fallbacks)
            recorded = await self._record(brief, opinion, fallbacks)
        self.telemetry.count("ai.opinions", provider=opinion.provider)
        return Enrichment(opinion, similar, fallbacks, recorded)

    async def close(self) -> None:
        """Close the providers' HTTP clients (at worker shutdown)."""
        for provider in (*self.analysts, self.embeddings):
            close = getattr(provider, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:
                    log.warning("closing an AI provider failed (%s)", type(exc).__name__)

    # --- analysts ------------------------------------------------------------------------

    async def _opinion(self, brief: ListingBrief, deadline: float, fallbacks: list[str]) -> AiOpinion:
        loop = asyncio.get_running_loop()
        for analyst in self.analysts:
            if analyst.name == RULES:
                return RuleAnalyst.opinion(brief)
            remaining = deadline - loop.time()
            if remaining <= 0:
                fallbacks.append(f"{analyst.name}: time budget spent")
                continue
            if analyst.paid and await self._budget_spent():
                fallbacks.append(f"{analyst.name}: daily AI budget spent")
                continue
            started = loop.time()
            try:
                async with asyncio.timeout(min(self.budget.per_call.total_seconds(), remaining)):
                    opinion = await analyst.assess(brief)
                opinion = replace(opinion, score=check_score(opinion.score), provider=analyst.name,
                                  latency=timedelta(seconds=loop.time() - started))
                if not opinion.explanation.strip():
                    raise AnalystFailed("empty explanation")
            except TimeoutError:
                self._failed(analyst.name, "timeout", fallbacks)
                continue
            except AnalystFailed as exc:
                self._failed(analyst.name, str(exc), fallbacks)
                continue
            except Exception as exc:  # a provider must never take the caller down
                self._failed(analyst.name, f"unexpected {type(exc).__name__}", fallbacks)
                continue
            self.telemetry.observe("ai.latency_ms", opinion.latency.total_seconds() * 1000, provider=analyst.name)
            if opinion.cost_usd > 0:
                await self._spend(opinion.cost_usd)
            return opinion
        return RuleAnalyst.opinion(brief)  # unreachable: the chain ends with the rules

    def _failed(self, provider: str, reason: str, fallbacks: list[str]) -> None:
        # `reason` is built by us or the adapters from status codes and exception types: no keys.
        if not reason.startswith(f"{provider}:"):
            reason = f"{provider}: {reason}"
        fallbacks.append(reason[:300])
        log.warning("AI provider unavailable, falling back: %s", reason[:300])
        self.telemetry.count("ai.fallbacks", provider=provider)

    # --- the daily budget ----------------------------------------------------------------

    def _spend_key(self) -> str:
        return f"ai:spend:{self.clock.now().date().isoformat()}"

    async def spent_today(self) -> Decimal:
        raw = await self.cache.get(self._spend_key())
        return Decimal(raw.decode()) if raw else _ZERO

    async def _budget_spent(self) -> bool:
        try:
            return await self.spent_today() >= self.budget.daily_usd
        except Exception as exc:
            # Spend unknown: assume it is spent rather than risk paying past the budget.
            log.warning("AI spend unreadable (%s): paid providers skipped", type(exc).__name__)
            return True

    async def _spend(self, cost: Decimal) -> None:
        # Read-modify-write: two workers spending at once may under-count by one call.
        try:
            total = await self.spent_today() + cost
            await self.cache.set(self._spend_key(), str(total).encode(), _SPEND_TTL)
        except Exception as exc:
            log.warning("AI spend not recorded (%s)", type(exc).__name__)

    # --- similar listings ----------------------------------------------------------------

    async def _similar(self, brief: ListingBrief, deadline: float, fallbacks: list[str]) -> list[SimilarListing]:
        if self.embeddings is None or self.budget.similar_k <= 0:
            return []
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        try:
            async with asyncio.timeout(min(self.budget.per_call.total_seconds(), remaining)):
                return await self._rank(brief, self.embeddings)
        except TimeoutError:
            self._failed(self.embeddings.name, "timeout", fallbacks)
        except AnalystFailed as exc:
            self._failed(self.embeddings.name, str(exc), fallbacks)
        except Exception as exc:
            self._failed(self.embeddings.name, f"unexpected {type(exc).__name__}", fallbacks)
        return []

    async def _rank(self, brief: ListingBrief, embeddings: Embeddings) -> list[SimilarListing]:
        await self._catch_up()
        past = [k for k in self._known.values() if k.coin_id != brief.coin_id][-self.budget.max_corpus:]
        if not past:
            return []
        texts = [brief.text(), *(k.text for k in past)]
        vectors = await self._vectors(texts, embeddings)
        query = vectors[0]
        if query is None:
            return []
        candidates = [(k, v) for k, v in zip(past, vectors[1:], strict=True) if v is not None]
        # Off the event loop: a few thousand dot products must not delay anything else.
        scores = await asyncio.to_thread(lambda: [_cosine(query, v) for _, v in candidates])
        scored = zip(scores, (k for k, _ in candidates), strict=True)
        ranked = sorted(scored, key=lambda pair: (-pair[0], pair[1].symbol))
        return [SimilarListing(k.coin_id, k.symbol, s) for s, k in ranked[: self.budget.similar_k]]

    async def _vectors(self, texts: list[str], embeddings: Embeddings) -> list[list[float] | None]:
        """Cached vectors, the missing ones embedded in one batch (the query text first)."""
        keys = [self._embedding_key(t, embeddings) for t in texts]
        found: list[list[float] | None] = []
        for key in keys:
            try:
                raw = await self.cache.get(key)
            except Exception:
                raw = None
            found.append(_unpack(raw) if raw else None)
        missing = [i for i, v in enumerate(found) if v is None][: self.budget.new_embeddings_per_run]
        if not missing:
            return found
        if embeddings.paid and await self._budget_spent():
            raise AnalystFailed("daily AI budget spent")
        fresh = await embeddings.embed([texts[i] for i in missing])
        if len(fresh) != len(missing) or any(not v or len(v) != len(fresh[0]) for v in fresh):
            raise AnalystFailed("embeddings do not match the texts")
        for i, vector in zip(missing, fresh, strict=True):
            floats = [float(x) for x in vector]
            found[i] = floats
            try:
                await self.cache.set(keys[i], _pack(floats), _EMBEDDING_TTL)
            except Exception as exc:
                log.warning("embedding not cached (%s)", type(exc).__name__)
        return found

    def _embedding_key(self, text: str, embeddings: Embeddings) -> str:
        digest = hashlib.sha256(f"{embeddings.name}\x00{text}".encode()).hexdigest()
        return f"ai:embedding:{digest}"

    async def _catch_up(self) -> None:
        """The listings announced so far (the system user's events, read on from where we stopped)."""
        while True:
            batch = await self.store.read_user(SYSTEM_USER, after=self._read_up_to, limit=1000)
            for rec in batch:
                if isinstance(rec.event, ListingAnnounced):
                    ev = rec.event
                    self._known[ev.coin_id] = _Known(ev.coin_id, ev.symbol, listing_text(ev.full_name, ev.symbol))
                self._read_up_to = max(self._read_up_to, rec.position or 0)
            if len(batch) < 1000:
                return

    # --- recording -----------------------------------------------------------------------

    async def _record(self, brief: ListingBrief, opinion: AiOpinion, fallbacks: list[str]) -> Recorded | None:
        stream = analysis_stream(brief.coin_id)
        event = ListingAnalysed(
            brief.coin_id, brief.symbol, opinion.score, opinion.explanation[:2000], opinion.provider,
            brief.similar, opinion.cost_usd, tuple(fallbacks),
        )
        cause = Cause(self.clock.now(), f"listing-{brief.coin_id}")
        for _ in range(3):  # another worker may analyse the same listing at the same moment
            try:
                version = len(await self.store.load(stream)) + 1
                rec = Recorded(stream, version, cause.at, SYSTEM_USER, cause.correlation_id, event)
                [stored] = await self.store.append([rec])
                return stored
            except ConcurrencyConflict:
                continue
            except Exception as exc:
                log.warning("listing analysis of %s not recorded (%s)", brief.symbol, type(exc).__name__)
                return None
        return None


def _pack(vector: list[float]) -> bytes:
    return array("d", vector).tobytes()


def _unpack(raw: bytes) -> list[float] | None:
    if len(raw) % 8:
        return None
    values = array("d")
    values.frombytes(raw)
    return values.tolist()


def _cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return -1.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
