"""Wiring of the optional AI enrichment: the analyst chain and embeddings from Settings.

Only providers with a key are built, in the order OpenAI, Anthropic, Perplexity (the chain then
ends with the rules, which EnrichListing adds itself). No key at all: rules only, and no AI SDK
is even imported. The SDKs are the `ai` extra: a key set without its SDK installed is one line
(ConfigurationError) naming the extra, before the worker starts. Prices per 1,000 tokens (USD)
are list prices at the time of writing; they only feed the daily budget (SNIPER_AI_DAILY_BUDGET_USD).
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from decimal import Decimal

from application.ai import AiBudget, Embeddings, EnrichListing, ListingAnalyst
from application.errors import ConfigurationError
from application.ports import Cache, Clock, EventStore
from application.telemetry import NO_TELEMETRY, Telemetry
from entrypoints.config import Settings

# (input, output) USD per 1,000 tokens.
PRICES_PER_1K = {
    "openai": (Decimal("0.00015"), Decimal("0.0006")),
    "anthropic": (Decimal("0.0008"), Decimal("0.004")),
    "perplexity": (Decimal("0.001"), Decimal("0.001")),
}

AI_EXTRA = "mexc-sniper[ai]"
# The SDK each provider's adapter imports (Perplexity's API is OpenAI's, through its SDK).
SDK_OF_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "perplexity": "openai", "cohere": "cohere"}


def require_sdks(settings: Settings) -> None:
    """Raise ConfigurationError naming the `ai` extra when a provider's key is set and its SDK is
    not installed. Imports nothing: the SDKs load when their adapter is built."""
    for provider, sdk in SDK_OF_PROVIDER.items():
        var = f"{provider.upper()}_API_KEY"
        if getattr(settings, var.lower()) is not None and importlib.util.find_spec(sdk) is None:
            raise ConfigurationError(
                f"{var} is set but the {sdk} SDK is not installed: pip install '{AI_EXTRA}' (or unset {var})"
            )


def build_analysts(settings: Settings) -> list[ListingAnalyst]:
    require_sdks(settings)
    s, call_timeout = settings, timedelta(seconds=settings.sniper_ai_call_timeout_seconds)
    analysts: list[ListingAnalyst] = []
    if s.openai_api_key:
        from adapters.ai.openai_chat import OpenAIAnalyst

        price_in, price_out = PRICES_PER_1K["openai"]
        analysts.append(OpenAIAnalyst(s.openai_api_key.reveal(), s.openai_model, s.openai_base_url, call_timeout,
                                      price_in, price_out))
    if s.anthropic_api_key:
        from adapters.ai.anthropic_messages import AnthropicAnalyst

        price_in, price_out = PRICES_PER_1K["anthropic"]
        analysts.append(AnthropicAnalyst(s.anthropic_api_key.reveal(), s.anthropic_model, s.anthropic_base_url,
                                         call_timeout, price_in, price_out))
    if s.perplexity_api_key:
        from adapters.ai.openai_chat import PerplexityAnalyst

        price_in, price_out = PRICES_PER_1K["perplexity"]
        analysts.append(PerplexityAnalyst(s.perplexity_api_key.reveal(), s.perplexity_model, s.perplexity_base_url,
                                          call_timeout, price_in, price_out))
    return analysts


def build_embeddings(settings: Settings) -> Embeddings | None:
    if not settings.cohere_api_key:
        return None
    require_sdks(settings)
    from adapters.ai.cohere_embed import CohereEmbeddings

    return CohereEmbeddings(settings.cohere_api_key.reveal(), settings.cohere_model, settings.cohere_base_url,
                            timedelta(seconds=settings.sniper_ai_call_timeout_seconds))


def build_enrichment(settings: Settings, store: EventStore, clock: Clock, cache: Cache,
                     telemetry: Telemetry = NO_TELEMETRY) -> EnrichListing:
    budget = AiBudget(total=timedelta(seconds=settings.sniper_ai_timeout_seconds),
                      per_call=timedelta(seconds=settings.sniper_ai_call_timeout_seconds),
                      daily_usd=settings.sniper_ai_daily_budget_usd)
    return EnrichListing(build_analysts(settings), build_embeddings(settings), store, clock, cache, budget, telemetry)
