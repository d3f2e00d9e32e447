"""Cohere embeddings: v2 /embed through the official `cohere` SDK (AsyncClientV2).

Retries off (request_options max_retries=0), the API key and base URL passed explicitly (the SDK
would otherwise read CO_API_KEY / CO_API_URL), errors re-raised as AnalystFailed without the
SDK's message. Texts go in batches of 96, the API's limit per call.
"""

from __future__ import annotations

from datetime import timedelta

import cohere
import httpx
from cohere.core.api_error import ApiError

from adapters.ai.sdk import require_key, sdk_client
from application.ai import AnalystFailed

COHERE_BASE_URL = "https://api.cohere.com"
_BATCH = 96


class CohereEmbeddings:
    paid = True

    def __init__(
        self,
        api_key: str,
        model: str = "embed-v4.0",
        base_url: str = COHERE_BASE_URL,
        timeout: timedelta = timedelta(seconds=3),
    ) -> None:
        require_key(api_key, "cohere")
        self.model = model
        self.name = f"cohere/{model}"
        self._timeout = timeout.total_seconds()
        # Our own HTTP client, so closing it is ours too.
        self._http = httpx.AsyncClient(timeout=self._timeout)
        self._client = sdk_client(cohere.AsyncClientV2, api_key, base_url, timeout, httpx_client=self._http)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            vectors.extend(await self._batch(texts[start:start + _BATCH]))
        return vectors

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        try:
            reply = await self._client.embed(
                model=self.model, input_type="clustering", texts=texts, embedding_types=["float"],
                request_options={"max_retries": 0, "timeout": self._timeout},
            )
        except ApiError as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:  # a 2xx body it could not read
                raise AnalystFailed("cohere: unreadable reply") from None
            raise AnalystFailed(f"cohere: HTTP {exc.status_code}") from None
        except httpx.TimeoutException:
            raise AnalystFailed("cohere: timeout") from None
        except httpx.HTTPError:
            raise AnalystFailed("cohere: connection failed") from None
        except (ValueError, TypeError) as exc:  # a body that is not the embed response
            raise AnalystFailed(f"cohere: unreadable reply ({type(exc).__name__})") from None
        floats = getattr(getattr(reply, "embeddings", None), "float_", None)
        if not isinstance(floats, list) or len(floats) != len(texts):
            raise AnalystFailed("cohere: malformed answer: no float embeddings for every text")
        try:
            return [[float(x) for x in vector] for vector in floats]
        except (TypeError, ValueError):
            raise AnalystFailed("cohere: malformed answer: embeddings are not numbers") from None

    async def close(self) -> None:
        await self._http.aclose()
