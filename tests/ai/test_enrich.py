"""EnrichListing: the fallback chain, the time and cost budgets, cached embeddings and similar
listings, and the ListingAnalysed record. Providers are the real adapters on the fakes."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.memory import InMemoryCache
from application import repository
from application.ai import AiBudget, AiOpinion, EnrichListing, ListingBrief, RuleAnalyst, analysis_stream
from domain.events import Cause, ListingAnalysed
from domain.listing import Listing
from domain.values import Symbol
from tests.ai.support import KEYS, LAUNCH, analyst, brief, chain, embeddings
from tests.fakes.ai import Mode

NOW = LAUNCH - timedelta(minutes=30)
FAST = AiBudget(total=timedelta(seconds=3), per_call=timedelta(seconds=1))


def enrichment(fakes, budget: AiBudget = FAST, with_embeddings: bool = False, analysts=None,
               store=None, cache=None, clock=None) -> EnrichListing:
    clock = clock or ManualClock(NOW)
    return EnrichListing(
        chain(fakes) if analysts is None else analysts, embeddings(fakes) if with_embeddings else None,
        store or InMemoryEventStore(), clock, cache or InMemoryCache(clock), budget,
    )


async def announce(store: InMemoryEventStore, coin_id: str, ticker: str, name: str) -> None:
    listing = Listing.announce(coin_id, ticker, name, Symbol(ticker, "USDT"), LAUNCH, Cause(NOW, f"listing-{coin_id}"))
    await repository.save(store, listing)


class TestFallbackChain:
    async def test_the_first_provider_that_answers_gives_the_opinion(self, fakes) -> None:
        fakes["openai"].mode = Mode.ERROR_500
        use_case = enrichment(fakes)
        result = await use_case(brief())
        assert result.opinion.provider == "anthropic" and result.opinion.score == Decimal(72)
        assert result.fallbacks == ["openai: HTTP 500"]
        assert fakes["perplexity"].requests == []  # never asked: anthropic answered
        assert await use_case.spent_today() == Decimal("0.0012")

    @pytest.mark.parametrize("modes", [
        (Mode.SLOW, Mode.ERROR_500, Mode.MALFORMED),
        (Mode.HANG, Mode.ERROR_429, Mode.NONSENSE),
        (Mode.ERROR_401, Mode.HANG, Mode.SLOW),
    ], ids=lambda ms: "-".join(m.value for m in ms))
    async def test_every_provider_failing_ends_in_the_rules_within_the_time_budget(self, modes, fakes) -> None:
        for provider, mode in zip(("openai", "anthropic", "perplexity"), modes, strict=True):
            fakes[provider].mode, fakes[provider].delay = mode, 10.0
        use_case = enrichment(fakes)
        started = time.monotonic()
        result = await use_case(brief())
        elapsed = time.monotonic() - started
        assert elapsed < FAST.total.total_seconds() + 1.0
        assert result.opinion.provider == "rules" and result.opinion.score == Decimal(95)
        assert [f.split(":")[0] for f in result.fallbacks] == ["openai", "anthropic", "perplexity"]
        assert result.opinion.cost_usd == 0 and await use_case.spent_today() == 0

    async def test_the_total_budget_cuts_the_chain_short(self, fakes) -> None:
        for provider in ("openai", "anthropic", "perplexity"):
            fakes[provider].mode = Mode.HANG
        budget = AiBudget(total=timedelta(seconds=1.5), per_call=timedelta(seconds=1))
        use_case = enrichment(fakes, budget, analysts=chain(fakes, timeout=5.0))  # SDK timeouts looser than ours
        started = time.monotonic()
        result = await use_case(brief())
        elapsed = time.monotonic() - started
        assert 1.4 < elapsed < 1.5 + 1.0
        assert result.opinion.provider == "rules"
        assert result.fallbacks == ["openai: timeout", "anthropic: timeout", "perplexity: time budget spent"]
        assert fakes["perplexity"].requests == []

    async def test_no_analysts_means_rules_only(self, fakes) -> None:
        result = await enrichment(fakes, analysts=[])(brief(pattern="approved", confidence=Decimal("0.40")))
        assert result.opinion.provider == "rules" and result.opinion.score == Decimal(40)
        assert "approved" in result.opinion.explanation and result.fallbacks == []
        assert all(s.requests == [] for s in fakes.values())

    async def test_an_analyst_raising_anything_is_passed_over(self) -> None:
        class Broken:
            name, paid = "broken", False

            async def assess(self, b: ListingBrief) -> AiOpinion:
                raise RuntimeError("bug")

        class Liar:
            name, paid = "liar", False

            async def assess(self, b: ListingBrief) -> AiOpinion:
                return AiOpinion(Decimal(101), "too good", "liar")

        clock = ManualClock(NOW)
        use_case = EnrichListing([Broken(), Liar()], None, InMemoryEventStore(), clock, InMemoryCache(clock), FAST)
        result = await use_case(brief())
        assert result.opinion.provider == "rules"
        assert result.fallbacks == ["broken: unexpected RuntimeError", "liar: score must be between 0 and 100"]


class TestRuleAnalyst:
    async def test_the_score_is_the_domains_confidence(self) -> None:
        opinion = await RuleAnalyst().assess(brief(confidence=Decimal("0.85"), lead=timedelta(minutes=3)))
        assert (opinion.score, opinion.provider, opinion.cost_usd) == (Decimal(85), "rules", Decimal(0))
        assert "3m00s" in opinion.explanation and opinion == await RuleAnalyst().assess(
            brief(confidence=Decimal("0.85"), lead=timedelta(minutes=3)))


class TestCostBudget:
    async def test_once_the_day_is_spent_paid_providers_are_skipped(self, fakes) -> None:
        clock = ManualClock(NOW)
        budget = AiBudget(total=timedelta(seconds=3), per_call=timedelta(seconds=1), daily_usd=Decimal("0.0002"))
        use_case = enrichment(fakes, budget, clock=clock)
        first = await use_case(brief())
        assert first.opinion.provider == "openai" and first.opinion.cost_usd == Decimal("0.00021")
        second = await use_case(brief())
        assert second.opinion.provider == "rules"
        assert second.fallbacks == [f"{p}: daily AI budget spent" for p in ("openai", "anthropic", "perplexity")]
        assert [len(fakes[p].requests) for p in ("openai", "anthropic", "perplexity")] == [1, 0, 0]
        clock.advance(timedelta(days=1))  # a new UTC day, a new budget
        assert (await use_case(brief())).opinion.provider == "openai"
        assert len(fakes["openai"].requests) == 2

    async def test_a_zero_budget_never_pays(self, fakes) -> None:
        budget = AiBudget(total=timedelta(seconds=3), per_call=timedelta(seconds=1), daily_usd=Decimal(0))
        result = await enrichment(fakes, budget, with_embeddings=True)(brief())
        assert result.opinion.provider == "rules"
        assert all(s.requests == [] for s in fakes.values())

    async def test_an_unreadable_spend_skips_paid_providers_and_never_raises(self, fakes) -> None:
        class BrokenCache:
            async def get(self, key):
                raise ConnectionError("redis down")

            async def set(self, key, value, ttl=None):
                raise ConnectionError("redis down")

            async def delete(self, key):
                raise ConnectionError("redis down")

        result = await enrichment(fakes, with_embeddings=True, cache=BrokenCache())(brief())
        assert result.opinion.provider == "rules" and result.recorded is not None
        assert all(s.requests == [] for s in fakes.values())


class TestSimilarListings:
    async def test_the_most_similar_past_listings_are_found_and_given_to_the_analyst(self, fakes) -> None:
        store = InMemoryEventStore()
        await announce(store, "c-1", "SUNNY", "Solar Energy Token")
        await announce(store, "c-2", "PEPEFROG", "Pepe Frog Coin")
        await announce(store, "c-3", "FROGINU", "Frog Inu Meme")
        await announce(store, "new-1", "FROGPEPE", "Frog Pepe Classic Coin")  # the listing itself: not its own match
        use_case = enrichment(fakes, with_embeddings=True, store=store)
        result = await use_case(brief("new-1", "FROGPEPEUSDT", "Frog Pepe Classic Coin"))
        assert [s.symbol for s in result.similar] == ["PEPEFROGUSDT", "FROGINUUSDT", "SUNNYUSDT"]
        assert result.similar[0].similarity > result.similar[1].similarity > result.similar[2].similarity
        assert result.recorded is not None and result.recorded.event.similar_symbols[:2] == (
            "PEPEFROGUSDT", "FROGINUUSDT"
        )
        prompt = fakes["openai"].requests[0].body["messages"][1]["content"]
        assert "PEPEFROGUSDT, FROGINUUSDT" in prompt

    async def test_k_limits_the_matches(self, fakes) -> None:
        store = InMemoryEventStore()
        for i in range(5):
            await announce(store, f"c-{i}", f"COIN{i}", f"Coin number {i}")
        budget = AiBudget(total=timedelta(seconds=3), per_call=timedelta(seconds=1), similar_k=2)
        result = await enrichment(fakes, budget, with_embeddings=True, store=store, analysts=[])(brief())
        assert len(result.similar) == 2

    async def test_embeddings_are_cached_by_text(self, fakes) -> None:
        store = InMemoryEventStore()
        await announce(store, "c-1", "SUNNY", "Solar Energy Token")
        await announce(store, "c-2", "PEPEFROG", "Pepe Frog Coin")
        use_case = enrichment(fakes, with_embeddings=True, store=store, analysts=[])
        first = await use_case(brief())
        assert fakes["cohere"].count("/v2/embed") == 1 and len(fakes["cohere"].requests[0].body["texts"]) == 3
        second = await use_case(brief())
        assert fakes["cohere"].count("/v2/embed") == 1  # every vector from the cache
        assert [s.symbol for s in second.similar] == [s.symbol for s in first.similar]
        await announce(store, "c-3", "FROGINU", "Frog Inu Meme")
        third = await use_case(brief())
        assert fakes["cohere"].count("/v2/embed") == 2
        assert fakes["cohere"].requests[1].body["texts"] == ["Frog Inu Meme (FROGINUUSDT)"]  # only the new one
        assert len(third.similar) == 3

    async def test_failing_embeddings_leave_the_opinion_to_the_analysts(self, fakes) -> None:
        store = InMemoryEventStore()
        await announce(store, "c-1", "SUNNY", "Solar Energy Token")
        fakes["cohere"].mode = Mode.HANG
        result = await enrichment(fakes, with_embeddings=True, store=store)(brief())
        assert result.similar == [] and result.opinion.provider == "openai"
        [fallback] = result.fallbacks  # our per-call timeout or the SDK's, whichever fires first
        assert fallback.startswith("cohere/embed-test: ") and fallback.endswith("timeout")


class TestRecording:
    async def test_the_opinion_is_recorded_in_the_listings_analysis_stream(self, fakes) -> None:
        store = InMemoryEventStore()
        fakes["openai"].mode = Mode.ERROR_429
        result = await enrichment(fakes, store=store)(brief())
        [rec] = await store.load(analysis_stream("new-1"))
        assert rec == result.recorded and rec.stream_id == "analysis-new-1" and rec.version == 1
        assert rec.user_id == "system" and rec.correlation_id == "listing-new-1" and rec.occurred_at == NOW
        event = rec.event
        assert isinstance(event, ListingAnalysed)
        assert (event.symbol, event.score, event.provider, event.cost_usd) == (
            "NEWUSDT", Decimal(72), "anthropic", Decimal("0.0012"))
        assert event.fallbacks == ("openai: HTTP 429",)

    async def test_concurrent_analyses_of_one_listing_are_both_recorded(self, fakes) -> None:
        store = InMemoryEventStore()
        use_case = enrichment(fakes, store=store, analysts=[])
        await asyncio.gather(use_case(brief()), use_case(brief()), enrichment(fakes, store=store, analysts=[])(brief()))
        assert [r.version for r in await store.load(analysis_stream("new-1"))] == [1, 2, 3]

    async def test_the_analysis_survives_the_sql_store(self, fakes, tmp_path) -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
        try:
            store = SqlEventStore(engine)
            await store.create_schema()
            await announce(store, "c-1", "SUNNY", "Solar Energy Token")
            result = await enrichment(fakes, store=store, with_embeddings=True)(brief())
            [rec] = await store.load(analysis_stream("new-1"))
            assert rec.event == result.recorded.event and rec.event.similar_symbols == ("SUNNYUSDT",)
            assert rec.event.cost_usd == Decimal("0.00021")
        finally:
            await engine.dispose()

    async def test_a_failing_store_does_not_raise(self, fakes) -> None:
        class BrokenStore(InMemoryEventStore):
            async def append(self, events):
                raise ConnectionError("database down")

        result = await enrichment(fakes, store=BrokenStore(), analysts=[])(brief())
        assert result.recorded is None and result.opinion.provider == "rules"


class TestSecrets:
    async def test_keys_never_reach_logs_errors_or_the_history(self, fakes, caplog: pytest.LogCaptureFixture) -> None:
        for server in fakes.values():
            server.mode = Mode.ERROR_401  # each fake echoes the credential it got in its error body
        store = InMemoryEventStore()
        await announce(store, "c-1", "SUNNY", "Solar Energy Token")
        caplog.set_level(logging.DEBUG)
        result = await enrichment(fakes, with_embeddings=True, store=store)(brief())
        assert result.opinion.provider == "rules" and len(result.fallbacks) == 4
        assert all(s.requests for s in fakes.values())  # every provider was really called
        texts = [caplog.text, repr(result), repr(await store.read_all())]
        for key in KEYS.values():
            for text in texts:
                assert key not in text
        assert "falling back" in caplog.text

    def test_adapters_do_not_show_their_key(self, fakes) -> None:
        for provider in ("openai", "anthropic", "perplexity"):
            a = analyst(provider, fakes)
            assert KEYS[provider] not in repr(a) and KEYS[provider] not in str(vars(a).keys())
