"""FakeAiServer: local HTTP servers that speak the AI providers' APIs, for tests and demos.

One server plays one provider, on 127.0.0.1 (tests/fakes/http_server.py's LocalHttpServer, on uvicorn), closely
enough for the official SDKs:
- "openai": POST /v1/chat/completions (and /chat/completions, Perplexity's path);
- "anthropic": POST /v1/messages;
- "cohere": POST /v2/embed (float embeddings, deterministic: a bag of hashed words, so texts
  sharing words are similar).

`mode` (settable at any time) says how it answers: OK; SLOW (OK after `delay` seconds); HANG
(never); ERROR_500 / ERROR_429 / ERROR_401 (an error body that, like a careless server, echoes the
credential it was sent, so tests can check it never reaches our logs or errors); MALFORMED (a
truncated JSON body); NONSENSE (a well-formed reply whose model text is not our JSON; for
Cohere, fewer vectors than texts).
Every request is counted and kept in `requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tests.fakes.http_server import HttpRequest, LocalHttpServer


class Mode(Enum):
    OK = "ok"
    SLOW = "slow"
    HANG = "hang"
    ERROR_500 = "500"
    ERROR_429 = "429"
    ERROR_401 = "401"
    MALFORMED = "malformed"
    NONSENSE = "nonsense"


_PATHS = {
    "openai": ("/v1/chat/completions", "/chat/completions"),
    "anthropic": ("/v1/messages",),
    "cohere": ("/v2/embed",),
}
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class FakeRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAiServer(LocalHttpServer):
    provider: str
    mode: Mode = Mode.OK
    delay: float = 5.0
    answer: str = '{"score": 72, "explanation": "Ready well ahead of launch; similar listings opened on time."}'
    tokens_in: int = 1000
    tokens_out: int = 100
    dimensions: int = 64
    requests: list[FakeRequest] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        if self.provider not in _PATHS:
            raise ValueError(f"unknown provider {self.provider!r}")
        self._hang = asyncio.Event()

    @property
    def base_url(self) -> str:
        """What the provider's SDK takes as its base URL."""
        return f"{self.url}/v1" if self.provider == "openai" else self.url

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        path, headers = request.path.split("?", 1)[0], request.headers
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        self.requests.append(FakeRequest(request.method, path, headers, body))
        if request.method != "POST" or path not in _PATHS[self.provider]:
            return 404, b'{"error": {"message": "not found"}}'
        mode = self.mode
        if mode is Mode.HANG:
            await self._hang.wait()
        if mode is Mode.SLOW:
            await asyncio.sleep(self.delay)
        if mode in (Mode.ERROR_500, Mode.ERROR_429, Mode.ERROR_401):
            presented = headers.get("authorization") or headers.get("x-api-key") or ""
            status = int(mode.value)
            return status, json.dumps(
                {"error": {"type": "fake_error", "message": f"failed for credential {presented}"}}
            ).encode()
        if mode is Mode.MALFORMED:
            return 200, b'{"id": "x", "choices": [{"message": {"content": "{\\"score'
        answer = "Looks promising, I'd buy." if mode is Mode.NONSENSE else self.answer
        return 200, json.dumps(self._reply(body or {}, answer)).encode()

    def _reply(self, body: dict[str, Any], answer: str) -> dict[str, Any]:
        model = body.get("model", "fake")
        if self.provider == "openai":
            return {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_764_000_000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out,
                          "total_tokens": self.tokens_in + self.tokens_out},
            }
        if self.provider == "anthropic":
            return {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": self.tokens_in, "output_tokens": self.tokens_out},
            }
        texts = [str(t) for t in body.get("texts") or []]
        vectors = [self.vector(t) for t in texts]
        if answer != self.answer:  # NONSENSE: fewer vectors than texts
            vectors = vectors[:1] if len(vectors) > 1 else []
        return {
            "id": "embed-fake", "response_type": "embeddings_by_type", "texts": texts,
            "embeddings": {"float": vectors},
            "meta": {"api_version": {"version": "2"},
                     "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)}},
        }

    def vector(self, text: str) -> list[float]:
        """A deterministic embedding: each word adds 1 to a hashed dimension, then unit length."""
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def count(self, path_suffix: str = "") -> int:
        return sum(1 for r in self.requests if r.path.endswith(path_suffix))
