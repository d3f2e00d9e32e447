"""OpenAI and Perplexity analysts: chat completions through the official `openai` SDK.

Perplexity speaks the same API at https://api.perplexity.ai, so one adapter serves both. The
set-up shared with the Anthropic adapter is in adapters/ai/sdk.py: the SDK's own retries are off
(max_retries=0), since the use case's fallback chain is the retry and its time budget must hold;
errors are re-raised as AnalystFailed naming the provider and what went wrong (status code,
timeout, unreadable reply), never the SDK's message, which may quote a reply or a request.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import openai

from adapters.ai.prompt import OPINION_SCHEMA, SYSTEM_PROMPT, user_prompt
from adapters.ai.sdk import SdkAnalyst
from application.ai import AiOpinion, AnalystFailed, ListingBrief

OPENAI_BASE_URL = "https://api.openai.com/v1"
PERPLEXITY_BASE_URL = "https://api.perplexity.ai"
_MAX_ANSWER_TOKENS = 300


class OpenAIAnalyst(SdkAnalyst):
    def __init__(
        self,
        api_key: str,
        model: str = "gpt-4o-mini",
        base_url: str = OPENAI_BASE_URL,
        timeout: timedelta = timedelta(seconds=3),
        price_in_per_1k: Decimal = Decimal("0.00015"),
        price_out_per_1k: Decimal = Decimal("0.0006"),
        name: str = "openai",
    ) -> None:
        # Key and base URL passed explicitly: never OPENAI_API_KEY / OPENAI_BASE_URL from the environment.
        super().__init__(openai.AsyncOpenAI, api_key, model, base_url, timeout, price_in_per_1k, price_out_per_1k, name)

    def _request(self, brief: ListingBrief) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_prompt(brief)},
            ],
            "response_format": {"type": "json_object"},
            "max_completion_tokens": _MAX_ANSWER_TOKENS,
            "temperature": 0,
        }

    async def assess(self, brief: ListingBrief) -> AiOpinion:
        started = time.monotonic()
        with self._sdk_errors(openai):
            reply = await self._client.chat.completions.create(**self._request(brief))
        try:
            text = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise AnalystFailed(f"{self.name}: malformed answer: no message content")
        usage = getattr(reply, "usage", None)
        return self._opinion(text, getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0), started)


class PerplexityAnalyst(OpenAIAnalyst):
    """Perplexity's OpenAI-compatible chat completions (it takes a JSON Schema, not json_object)."""

    def __init__(
        self,
        api_key: str,
        model: str = "sonar",
        base_url: str = PERPLEXITY_BASE_URL,
        timeout: timedelta = timedelta(seconds=3),
        price_in_per_1k: Decimal = Decimal("0.001"),
        price_out_per_1k: Decimal = Decimal("0.001"),
    ) -> None:
        super().__init__(api_key, model, base_url, timeout, price_in_per_1k, price_out_per_1k, name="perplexity")

    def _request(self, brief: ListingBrief) -> dict[str, Any]:
        request = super()._request(brief)
        del request["max_completion_tokens"]
        request["max_tokens"] = _MAX_ANSWER_TOKENS
        request["response_format"] = {"type": "json_schema", "json_schema": {"schema": OPINION_SCHEMA}}
        return request
