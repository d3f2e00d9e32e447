"""What the SDK-backed providers set up alike: a key required, the SDK's async client built with
every setting passed explicitly (so nothing is read from the provider's environment variables)
and its own retries off (the use case's fallback chain is the retry, and its time budget must
hold). SdkAnalyst adds what the chat analysts share: the price per 1,000 tokens, the SDK's errors
re-raised as AnalystFailed without the SDK's message, and the opinion read from the model's text.

No SDK is imported here: each adapter passes its own, so only the providers in use are loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any, TypeVar

from adapters.ai.prompt import parse_opinion, token_cost
from application.ai import AiOpinion, AnalystFailed

Client = TypeVar("Client")


def require_key(api_key: str, name: str) -> None:
    if not api_key:
        raise ValueError(f"{name} needs an API key")


def sdk_client(client_class: Callable[..., Client], api_key: str, base_url: str, timeout: timedelta,
               **options: Any) -> Client:
    """The SDK's client: key and base URL explicit, the timeout in seconds, no retries."""
    return client_class(
        api_key=api_key, base_url=base_url, timeout=timeout.total_seconds(), max_retries=0, **options,
    )


class SdkAnalyst:
    """Base of the chat analysts on an official SDK (OpenAI's and Anthropic's share their errors)."""

    paid = True

    def __init__(
        self,
        client_class: Callable[..., Any],
        api_key: str,
        model: str,
        base_url: str,
        timeout: timedelta,
        price_in_per_1k: Decimal,
        price_out_per_1k: Decimal,
        name: str,
    ) -> None:
        require_key(api_key, name)
        self.name, self.model = name, model
        self.price_in_per_1k, self.price_out_per_1k = price_in_per_1k, price_out_per_1k
        self._client = sdk_client(client_class, api_key, base_url, timeout)

    @contextmanager
    def _sdk_errors(self, sdk: ModuleType) -> Iterator[None]:
        """Around the SDK call: its errors become AnalystFailed naming what went wrong, not chained."""
        try:
            yield
        except sdk.APITimeoutError:
            raise AnalystFailed(f"{self.name}: timeout") from None
        except sdk.APIStatusError as exc:
            raise AnalystFailed(f"{self.name}: HTTP {exc.status_code}") from None
        except sdk.APIConnectionError:
            raise AnalystFailed(f"{self.name}: connection failed") from None
        except (sdk.APIError, ValueError, TypeError) as exc:  # unreadable reply
            raise AnalystFailed(f"{self.name}: unreadable reply ({type(exc).__name__})") from None

    def _opinion(self, text: str, tokens_in: int | None, tokens_out: int | None, started: float) -> AiOpinion:
        """The opinion in the model's text, its cost and how long since `started` (time.monotonic())."""
        try:
            score, explanation = parse_opinion(text)
        except AnalystFailed as exc:
            raise AnalystFailed(f"{self.name}: {exc}") from None
        cost = token_cost(tokens_in, tokens_out, self.price_in_per_1k, self.price_out_per_1k)
        return AiOpinion(score, explanation, self.name, cost, timedelta(seconds=time.monotonic() - started))

    async def close(self) -> None:
        await self._client.close()
