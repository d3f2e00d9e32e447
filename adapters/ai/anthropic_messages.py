"""Anthropic analyst: the Messages API through the official `anthropic` SDK.

Same rules as the OpenAI adapter: SDK retries off, every setting passed explicitly (nothing read
from ANTHROPIC_* variables), errors re-raised as AnalystFailed without the SDK's message.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import anthropic

from adapters.ai.prompt import SYSTEM_PROMPT, parse_opinion, token_cost, user_prompt
from application.ai import AiOpinion, AnalystFailed, ListingBrief

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
_MAX_ANSWER_TOKENS = 300


class AnthropicAnalyst:
    paid = True

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
        if not api_key:
            raise ValueError(f"{name} needs an API key")
        self.name, self.model = name, model
        self.price_in_per_1k, self.price_out_per_1k = price_in_per_1k, price_out_per_1k
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout.total_seconds(), max_retries=0,
        )

    async def assess(self, brief: ListingBrief) -> AiOpinion:
        started = time.monotonic()
        try:
            reply = await self._client.messages.create(
                model=self.model,
                max_tokens=_MAX_ANSWER_TOKENS,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": user_prompt(brief)}],
            )
        except anthropic.APITimeoutError:
            raise AnalystFailed(f"{self.name}: timeout") from None
        except anthropic.APIStatusError as exc:
            raise AnalystFailed(f"{self.name}: HTTP {exc.status_code}") from None
        except anthropic.APIConnectionError:
            raise AnalystFailed(f"{self.name}: connection failed") from None
        except (anthropic.APIError, ValueError, TypeError) as exc:
            raise AnalystFailed(f"{self.name}: unreadable reply ({type(exc).__name__})") from None
        blocks = getattr(reply, "content", None) or []
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", "") == "text")
        if not text:
            raise AnalystFailed(f"{self.name}: malformed answer: no text")
        try:
            score, explanation = parse_opinion(text)
        except AnalystFailed as exc:
            raise AnalystFailed(f"{self.name}: {exc}") from None
        usage = getattr(reply, "usage", None)
        cost = token_cost(
            getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0),
            self.price_in_per_1k, self.price_out_per_1k,
        )
        return AiOpinion(score, explanation, self.name, cost, timedelta(seconds=time.monotonic() - started))

    async def close(self) -> None:
        await self._client.close()
