"""AI tests run against local fake servers only: no provider variable from the environment
(keys, base URLs, proxies) may reach an SDK."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.fakes.ai import FakeAiServer

_PREFIXES = ("OPENAI_", "ANTHROPIC_", "PERPLEXITY_", "CO_", "COHERE_")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _PROXIES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeAiServer]]:
    """One running fake per provider: openai, anthropic, perplexity (an OpenAI-style fake), cohere."""
    servers = {
        "openai": FakeAiServer("openai"),
        "anthropic": FakeAiServer("anthropic"),
        "perplexity": FakeAiServer("openai"),
        "cohere": FakeAiServer("cohere"),
    }
    for server in servers.values():
        await server.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            await server.stop()
