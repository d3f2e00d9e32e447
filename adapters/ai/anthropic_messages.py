"""Anthropic analyst: the Messages API through the official `anthropic` SDK.

Same rules as the OpenAI adapter, from the same base (adapters/ai/sdk.py): SDK retries off, every
setting passed explicitly (nothing read from ANTHROPIC_* variables), errors re-raised as
AnalystFailed without the SDK's message.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import anthropic

from adapters.ai.prompt import SYSTEM_PROMPT, user_prompt
from adapters.ai.sdk import SdkAnalyst
from application.ai import AiOpinion, AnalystFailed, ListingBrief

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
_MAX_ANSWER_TOKENS = 300


class AnthropicAnalyst(SdkAnalyst):
    def __init__(
        self,
        api_key: str,
        model: str = "claude-3-5-haiku-latest",
        base_url: str = ANTHROPIC_BASE_URL,
        timeout: timedelta = timedelta(seconds=3),
        price_in_per_1k: Decimal = Decimal("0.0008"),
        price_out_per_1k: Decimal = Decimal("0.004"),
        name: str = "anthropic",
    ) -> None:
        super().__init__(
            anthropic.AsyncAnthropic, api_key, model, base_url, timeout, price_in_per_1k, price_out_per_1k, name,
        )

    async def assess(self, brief: ListingBrief) -> AiOpinion:
        started = time.monotonic()
        with self._sdk_errors(anthropic):
            reply = await self._client.messages.create(
                model=self.model,
                max_tokens=_MAX_ANSWER_TOKENS,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": user_prompt(brief)}],
            )
        blocks = getattr(reply, "content", None) or []
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", "") == "text")
        if not text:
            raise AnalystFailed(f"{self.name}: malformed answer: no text")
        usage = getattr(reply, "usage", None)
        return self._opinion(text, getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0), started)
