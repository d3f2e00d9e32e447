"""OpenAI and Perplexity analysts: chat completions through the official `openai` SDK.

Perplexity speaks the same API at https://api.perplexity.ai, so one adapter serves both. The
SDK's own retries are off (max_retries=0): the use case's fallback chain is the retry, and its
time budget must hold. Errors are re-raised as AnalystFailed naming the provider and what went
wrong (status code, timeout, unreadable reply), never the SDK's message, which may quote a
reply or a request.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import openai

from adapters.ai.prompt import OPINION_SCHEMA, SYSTEM_PROMPT, parse_opinion, token_cost, user_prompt
from application.ai import AiOpinion, AnalystFailed, ListingBrief

OPENAI_BASE_URL = "https://api.openai.com/v1"
PERPLEXITY_BASE_URL = "https://api.perplexity.ai"
_MAX_ANSWER_TOKENS = 300


class OpenAIAnalyst:
    paid = True

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
        if not api_key:
            raise ValueError(f"{name} needs an API key")
        self.name, self.model = name, model
        self.price_in_per_1k, self.price_out_per_1k = price_in_per_1k, price_out_per_1k
        # Key and base URL passed explicitly: never OPENAI_API_KEY / OPENAI_BASE_URL from the environment.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout.total_seconds(), max_retries=0,
        )

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
        try:
            reply = await self._client.chat.completions.create(**self._request(brief))
        except openai.APITimeoutError:
            raise AnalystFailed(f"{self.name}: timeout") from None
        except openai.APIStatusError as exc:
            raise AnalystFailed(f"{self.name}: HTTP {exc.status_code}") from None
        except openai.APIConnectionError:
            raise AnalystFailed(f"{self.name}: connection failed") from None
        except (openai.APIError, ValueError, TypeError) as exc:  # unreadable reply
            raise AnalystFailed(f"{self.name}: unreadable reply ({type(exc).__name__})") from None
        try:
            text = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise AnalystFailed(f"{self.name}: malformed answer: no message content")
        try:
            score, explanation = parse_opinion(text)
        except AnalystFailed as exc:
            raise AnalystFailed(f"{self.name}: {exc}") from None
        usage = getattr(reply, "usage", None)
        cost = token_cost(
            getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0),
            self.price_in_per_1k, self.price_out_per_1k,
        )
        return AiOpinion(score, explanation, self.name, cost, timedelta(seconds=time.monotonic() - started))

    async def close(self) -> None:
        await self._client.close()


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
