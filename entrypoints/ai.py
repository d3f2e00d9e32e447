"""Wiring of the optional AI enrichment: the analyst chain and embeddings from Settings.

Only providers with a key are built, in the order OpenAI, Anthropic, Perplexity (the chain then
ends with the rules, which EnrichListing adds itself). No key at all: rules only, and no AI SDK
is even imported. The SDKs are the `ai` extra: a key set without its SDK installed is one line
(ConfigurationError) naming the extra, before the worker starts. Prices per 1,000 tokens (USD)
are list prices at the time of writing; they only feed the daily budget (SNIPER_AI_DAILY_BUDGET_USD).
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal

from application.ai import AiBudget, Embeddings, EnrichListing, ListingAnalyst
from application.errors import ConfigurationError
from application.ports import Cache, Clock, EventStore
from application.telemetry import NO_TELEMETRY, Telemetry
from entrypoints.config import AiSettings

# (input, output) USD per 1,000 tokens.
PRICES_PER_1K = {
    "openai": (Decimal("0.00015"), Decimal("0.0006")),
    "anthropic": (Decimal("0.0008"), Decimal("0.004")),
    "perplexity": (Decimal("0.001"), Decimal("0.001")),
}

AI_EXTRA = "mexc-sniper[ai]"
# The SDK each provider's adapter imports (Perplexity's API is OpenAI's, through its SDK).
SDK_OF_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "perplexity": "openai", "cohere": "cohere"}


def require_sdks(ai: AiSettings) -> None:
    """Raise ConfigurationError naming the `ai` extra when a provider's key is set and its SDK is
    not installed. Imports nothing: the SDKs load when their adapter is built."""
    for provider, sdk in SDK_OF_PROVIDER.items():
        if getattr(ai, provider).api_key and importlib.util.find_spec(sdk) is None:
            var = f"{provider.upper()}_API_KEY"
            raise ConfigurationError(
                f"{var} is set but the {sdk} SDK is not installed: pip install '{AI_EXTRA}' (or unset {var})"
            )


def build_analysts(ai: AiSettings) -> list[ListingAnalyst]:
    require_sdks(ai)
    analysts: list[ListingAnalyst] = []
    if ai.openai.api_key:
        from adapters.ai.openai_chat import OpenAIAnalyst

        price_in, price_out = PRICES_PER_1K["openai"]
        analysts.append(OpenAIAnalyst(ai.openai.api_key, ai.openai.model, ai.openai.base_url, ai.call_timeout,
                                      price_in, price_out))
    if ai.anthropic.api_key:
        from adapters.ai.anthropic_messages import AnthropicAnalyst

        price_in, price_out = PRICES_PER_1K["anthropic"]
        analysts.append(AnthropicAnalyst(ai.anthropic.api_key, ai.anthropic.model, ai.anthropic.base_url,
                                         ai.call_timeout, price_in, price_out))
    if ai.perplexity.api_key:
        from adapters.ai.openai_chat import PerplexityAnalyst

        price_in, price_out = PRICES_PER_1K["perplexity"]
        analysts.append(PerplexityAnalyst(ai.perplexity.api_key, ai.perplexity.model, ai.perplexity.base_url,
                                          ai.call_timeout, price_in, price_out))
    return analysts


def build_embeddings(ai: AiSettings) -> Embeddings | None:
    if not ai.cohere.api_key:
        return None
    require_sdks(ai)
    from adapters.ai.cohere_embed import CohereEmbeddings

    return CohereEmbeddings(ai.cohere.api_key, ai.cohere.model, ai.cohere.base_url, ai.call_timeout)


def build_enrichment(ai: AiSettings, store: EventStore, clock: Clock, cache: Cache,
                     telemetry: Telemetry = NO_TELEMETRY) -> EnrichListing:
    budget = AiBudget(total=ai.timeout, per_call=ai.call_timeout, daily_usd=ai.daily_budget_usd)
    return EnrichListing(build_analysts(ai), build_embeddings(ai), store, clock, cache, budget, telemetry)
