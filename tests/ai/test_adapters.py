"""Each provider adapter against its fake server, through the official SDK."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from adapters.ai.prompt import parse_opinion
from application.ai import AnalystFailed
from tests.ai.support import KEYS, analyst, brief, embeddings
from tests.fakes.ai import FakeAiServer, Mode

ANALYSTS = ("openai", "anthropic", "perplexity")
# 1000 tokens in, 100 out at the adapters' default prices per 1K tokens.
COSTS = {"openai": Decimal("0.00021"), "anthropic": Decimal("0.0012"), "perplexity": Decimal("0.0011")}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "perplexity": "/chat/completions"}
FAILURES = {
    Mode.SLOW: "timeout", Mode.HANG: "timeout", Mode.ERROR_500: "HTTP 500", Mode.ERROR_429: "HTTP 429",
    Mode.ERROR_401: "HTTP 401", Mode.MALFORMED: "unreadable reply", Mode.NONSENSE: "malformed answer",
}


class TestAnalysts:
    @pytest.mark.parametrize("provider", ANALYSTS)
    async def test_an_answer_is_parsed_with_its_cost(self, provider: str, fakes: dict[str, FakeAiServer]) -> None:
        opinion = await analyst(provider, fakes).assess(brief(similar=("PEPEUSDT",)))
        assert opinion.score == Decimal(72) and "opened on time" in opinion.explanation
        assert opinion.provider == provider and opinion.cost_usd == COSTS[provider]
        [request] = fakes[provider].requests
        assert request.path == PATHS[provider]
        assert request.headers["authorization"] == f"Bearer {KEYS[provider]}"
        prompt = " ".join(str(m.get("content")) for m in request.body["messages"])
        assert "NEWUSDT" in prompt and "New Coin" in prompt and "PEPEUSDT" in prompt
        assert request.headers.get("x-stainless-retry-count", "0") == "0"

    async def test_perplexity_asks_for_a_json_schema_and_openai_for_a_json_object(self, fakes) -> None:
        await analyst("perplexity", fakes).assess(brief())
        await analyst("openai", fakes).assess(brief())
        assert fakes["perplexity"].requests[0].body["response_format"]["type"] == "json_schema"
        assert fakes["perplexity"].requests[0].body["model"] == "sonar"
        assert fakes["openai"].requests[0].body["response_format"] == {"type": "json_object"}

    @pytest.mark.parametrize("mode", list(FAILURES), ids=lambda m: m.value)
    @pytest.mark.parametrize("provider", ANALYSTS)
    async def test_failures_become_analyst_failed_without_the_key(self, provider: str, mode: Mode, fakes) -> None:
        fakes[provider].mode, fakes[provider].delay = mode, 5.0
        started = time.monotonic()
        with pytest.raises(AnalystFailed) as caught:
            await analyst(provider, fakes, timeout=0.5).assess(brief())
        elapsed = time.monotonic() - started
        assert str(caught.value).startswith(f"{provider}: {FAILURES[mode]}")
        assert elapsed < 0.5 + 1.5  # the SDK timeout holds; no retries
        assert len(fakes[provider].requests) == 1  # max_retries=0
        assert KEYS[provider] not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__  # the SDK error is not chained

    async def test_a_score_out_of_range_is_refused(self, fakes) -> None:
        fakes["openai"].answer = '{"score": 140, "explanation": "to the moon"}'
        with pytest.raises(AnalystFailed, match="between 0 and 100"):
            await analyst("openai", fakes).assess(brief())


class TestCohere:
    async def test_vectors_come_back_in_order(self, fakes) -> None:
        texts = ["Frog Coin (FROGUSDT)", "Solar Token (SOLRUSDT)"]
        vectors = await embeddings(fakes).embed(texts)
        assert vectors == [fakes["cohere"].vector(t) for t in texts]
        [request] = fakes["cohere"].requests
        assert request.path == "/v2/embed" and request.body["texts"] == texts
        assert request.body["embedding_types"] == ["float"] and request.body["model"] == "embed-test"
        assert request.headers["authorization"] == f"Bearer {KEYS['cohere']}"

    async def test_more_than_96_texts_go_in_batches(self, fakes) -> None:
        vectors = await embeddings(fakes).embed([f"coin {i}" for i in range(100)])
        assert len(vectors) == 100 and [len(r.body["texts"]) for r in fakes["cohere"].requests] == [96, 4]

    @pytest.mark.parametrize("mode, reason", [
        (Mode.SLOW, "timeout"), (Mode.HANG, "timeout"), (Mode.ERROR_500, "HTTP 500"), (Mode.ERROR_429, "HTTP 429"),
        (Mode.ERROR_401, "HTTP 401"), (Mode.MALFORMED, "unreadable reply"), (Mode.NONSENSE, "malformed answer"),
    ], ids=lambda v: getattr(v, "value", v))
    async def test_failures(self, mode: Mode, reason: str, fakes) -> None:
        fakes["cohere"].mode = mode
        started = time.monotonic()
        with pytest.raises(AnalystFailed) as caught:
            await embeddings(fakes, timeout=0.5).embed(["a b", "c d"])
        assert str(caught.value).startswith(f"cohere: {reason}")
        assert time.monotonic() - started < 2.0 and len(fakes["cohere"].requests) == 1
        assert KEYS["cohere"] not in str(caught.value) and caught.value.__cause__ is None


class TestParseOpinion:
    @pytest.mark.parametrize("text, score", [
        ('{"score": 72, "explanation": "ok"}', Decimal(72)),
        ('```json\n{"score": 72.5, "explanation": "ok"}\n```', Decimal(73)),
        ('{"score": "0", "explanation": "avoid"}', Decimal(0)),
        ('  {"score": 100, "explanation": "sure", "extra": 1}  ', Decimal(100)),
    ])
    def test_accepted(self, text: str, score: Decimal) -> None:
        assert parse_opinion(text)[0] == score

    @pytest.mark.parametrize("text", [
        "I like it", "[72]", '{"explanation": "no score"}', '{"score": 50}', '{"score": 50, "explanation": "  "}',
        '{"score": true, "explanation": "x"}', '{"score": -1, "explanation": "x"}',
        '{"score": "NaN", "explanation": "x"}',
        '{"score": "high", "explanation": "x"}', '{"score": null, "explanation": "x"}',
    ])
    def test_refused(self, text: str) -> None:
        with pytest.raises(AnalystFailed):
            parse_opinion(text)
