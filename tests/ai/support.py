"""Builders shared by the AI tests: keys, briefs, and the real adapters pointed at the fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from application.ai import ListingAnalyst, ListingBrief
from tests.fakes.ai import FakeAiServer

if TYPE_CHECKING:
    from adapters.ai.cohere_embed import CohereEmbeddings

# The adapters (and the SDKs they import: anthropic's alone is ~2 s) are imported by the builders below,
# when a test runs, not when pytest collects this package in every process.

KEYS = {
    "openai": "sk-test-OPENAI-0123456789abcdef",
    "anthropic": "sk-ant-test-ANTHROPIC-0123456789",
    "perplexity": "pplx-test-PERPLEXITY-0123456789",
    "cohere": "co-test-COHERE-0123456789abcdef",
}
LAUNCH = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def brief(coin_id: str = "new-1", symbol: str = "NEWUSDT", name: str = "New Coin", **overrides) -> ListingBrief:
    fields = dict(
        coin_id=coin_id, symbol=symbol, coin_name=name, launch_at=LAUNCH, lead=timedelta(minutes=30),
        pattern="ready", confidence=Decimal("0.95"), in_window=True,
    )
    fields.update(overrides)
    return ListingBrief(**fields)


def analyst(provider: str, fakes: dict[str, FakeAiServer], timeout: float = 1.0) -> ListingAnalyst:
    from adapters.ai.anthropic_messages import AnthropicAnalyst
    from adapters.ai.openai_chat import OpenAIAnalyst, PerplexityAnalyst

    t = timedelta(seconds=timeout)
    server = fakes[provider]
    if provider == "openai":
        return OpenAIAnalyst(KEYS["openai"], "gpt-test", server.base_url, t)
    if provider == "anthropic":
        return AnthropicAnalyst(KEYS["anthropic"], "claude-test", server.base_url, t)
    if provider == "perplexity":
        return PerplexityAnalyst(KEYS["perplexity"], "sonar", f"http://127.0.0.1:{server.port}", t)
    raise ValueError(provider)


def chain(fakes: dict[str, FakeAiServer], timeout: float = 1.0) -> list[ListingAnalyst]:
    return [analyst(p, fakes, timeout) for p in ("openai", "anthropic", "perplexity")]


def embeddings(fakes: dict[str, FakeAiServer], timeout: float = 1.0) -> CohereEmbeddings:
    from adapters.ai.cohere_embed import CohereEmbeddings

    return CohereEmbeddings(KEYS["cohere"], "embed-test", fakes["cohere"].base_url, timedelta(seconds=timeout))
