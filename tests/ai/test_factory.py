"""entrypoints/ai.py: the chain is built from Settings, only for providers with a key."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryCache
from application.ai import RuleAnalyst
from application.errors import ConfigurationError
from entrypoints.ai import AI_EXTRA, build_analysts, build_embeddings, build_enrichment
from entrypoints.cli import main
from entrypoints.config import ENV_VARS, SECRET_VARS, load_settings
from tests.ai.support import KEYS, LAUNCH, brief

ROOT = Path(__file__).resolve().parents[2]
AI_KEYS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PERPLEXITY_API_KEY", "COHERE_API_KEY"}


def test_without_keys_the_chain_is_the_rules_alone() -> None:
    ai = load_settings({})
    assert build_analysts(ai) == [] and build_embeddings(ai) is None
    clock = ManualClock(LAUNCH)
    use_case = build_enrichment(ai, InMemoryEventStore(), clock, InMemoryCache(clock))
    assert [type(a) for a in use_case.analysts] == [RuleAnalyst] and use_case.embeddings is None


def test_each_key_adds_its_provider_in_order(fakes) -> None:
    from adapters.ai.anthropic_messages import AnthropicAnalyst  # the SDKs load when a test runs, not at collection
    from adapters.ai.cohere_embed import CohereEmbeddings
    from adapters.ai.openai_chat import OpenAIAnalyst, PerplexityAnalyst

    env = {
        "OPENAI_API_KEY": KEYS["openai"], "PERPLEXITY_API_KEY": KEYS["perplexity"], "COHERE_API_KEY": KEYS["cohere"],
        "OPENAI_BASE_URL": fakes["openai"].base_url, "SNIPER_AI_CALL_TIMEOUT_SECONDS": "0.5",
        "SNIPER_AI_TIMEOUT_SECONDS": "2", "SNIPER_AI_DAILY_BUDGET_USD": "0.25", "PERPLEXITY_MODEL": "sonar-pro",
    }
    ai = load_settings(env)
    analysts = build_analysts(ai)
    assert [type(a) for a in analysts] == [OpenAIAnalyst, PerplexityAnalyst]
    assert analysts[1].model == "sonar-pro"
    assert isinstance(build_embeddings(ai), CohereEmbeddings)
    clock = ManualClock(LAUNCH)
    use_case = build_enrichment(ai, InMemoryEventStore(), clock, InMemoryCache(clock))
    assert use_case.budget.daily_usd == Decimal("0.25") and use_case.budget.total.total_seconds() == 2
    assert [a.name for a in use_case.analysts] == ["openai", "perplexity", "rules"]
    with_anthropic = build_analysts(load_settings({"ANTHROPIC_API_KEY": KEYS["anthropic"]}))
    assert [type(a) for a in with_anthropic] == [AnthropicAnalyst]


async def test_the_configured_base_url_is_the_one_called(fakes) -> None:
    ai = load_settings({"OPENAI_API_KEY": KEYS["openai"], "OPENAI_BASE_URL": fakes["openai"].base_url,
                        "OPENAI_MODEL": "gpt-local"})
    clock = ManualClock(LAUNCH)
    use_case = build_enrichment(ai, InMemoryEventStore(), clock, InMemoryCache(clock))
    result = await use_case(brief())
    assert result.opinion.provider == "openai"
    assert fakes["openai"].requests[0].body["model"] == "gpt-local"
    await use_case.close()


@pytest.mark.parametrize("env, variable", [
    ({"SNIPER_AI_TIMEOUT_SECONDS": "0"}, "SNIPER_AI_TIMEOUT_SECONDS"),
    ({"SNIPER_AI_CALL_TIMEOUT_SECONDS": "soon"}, "SNIPER_AI_CALL_TIMEOUT_SECONDS"),
    ({"SNIPER_AI_CALL_TIMEOUT_SECONDS": "9", "SNIPER_AI_TIMEOUT_SECONDS": "3"}, "SNIPER_AI_CALL_TIMEOUT_SECONDS"),
    ({"SNIPER_AI_DAILY_BUDGET_USD": "-1"}, "SNIPER_AI_DAILY_BUDGET_USD"),
    ({"SNIPER_AI_DAILY_BUDGET_USD": "lots"}, "SNIPER_AI_DAILY_BUDGET_USD"),
    ({"ANTHROPIC_BASE_URL": "api.anthropic.com"}, "ANTHROPIC_BASE_URL"),
    ({"COHERE_MODEL": "embed v4"}, "COHERE_MODEL"),
    ({"OPENAI_API_KEY": "sk-secret with-space"}, "OPENAI_API_KEY"),
])
def test_bad_values_stop_the_start_in_one_line(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message and "sk-secret" not in message


def test_every_ai_variable_is_listed_documented_and_keys_are_secret() -> None:
    names = {v.name for v in ENV_VARS}
    readme = (ROOT / "README.md").read_text()
    for name in AI_KEYS | {"OPENAI_BASE_URL", "OPENAI_MODEL", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL",
                           "PERPLEXITY_BASE_URL", "PERPLEXITY_MODEL", "COHERE_BASE_URL", "COHERE_MODEL",
                           "SNIPER_AI_TIMEOUT_SECONDS", "SNIPER_AI_CALL_TIMEOUT_SECONDS", "SNIPER_AI_DAILY_BUDGET_USD"}:
        assert name in names and f"| `{name}` |" in readme
    assert AI_KEYS <= SECRET_VARS
    settings = load_settings({"OPENAI_API_KEY": KEYS["openai"], "COHERE_API_KEY": KEYS["cohere"]})
    assert KEYS["openai"] not in repr(settings) and KEYS["cohere"] not in repr(settings)


@pytest.mark.parametrize("variable, sdk", [
    ("OPENAI_API_KEY", "openai"), ("ANTHROPIC_API_KEY", "anthropic"), ("PERPLEXITY_API_KEY", "openai"),
    ("COHERE_API_KEY", "cohere"),
])
def test_a_key_without_its_sdk_installed_is_one_line_naming_the_extra(
    variable: str, sdk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDKs are the `ai` extra: as if it were not installed (the import blocked), a key set
    stops the build, and `sniper worker` before it starts, in one line that names the extra."""
    monkeypatch.setitem(sys.modules, sdk, None)  # `import openai` fails; importlib finds no spec
    with pytest.raises(ModuleNotFoundError):
        __import__(sdk)
    ai = load_settings({variable: "sk-secret-key"})
    clock = ManualClock(LAUNCH)
    with pytest.raises(ConfigurationError) as caught:
        build_enrichment(ai, InMemoryEventStore(), clock, InMemoryCache(clock))
    expected = f"{variable} is set but the {sdk} SDK is not installed: pip install '{AI_EXTRA}' (or unset {variable})"
    assert str(caught.value) == expected and AI_EXTRA == "mexc-sniper[ai]"

    for name in AI_KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "sk-secret-key")
    out, err = io.StringIO(), io.StringIO()
    assert main(["worker", "--for", "1"], out, err) == 2
    assert err.getvalue() == f"sniper: {expected}\n" and out.getvalue() == ""


def test_with_no_key_no_ai_sdk_is_imported_and_nothing_is_connected_to() -> None:
    """In a fresh interpreter with every socket connection refused and the SDKs' imports blocked
    (as without the `ai` extra): rules only, and nothing tried to load an SDK."""
    script = textwrap.dedent("""
        import asyncio, socket, sys
        for sdk in ("openai", "anthropic", "cohere"):
            sys.modules[sdk] = None  # an import of one fails, as when the `ai` extra is not installed
        from datetime import UTC, datetime, timedelta
        from decimal import Decimal

        def refuse(*args, **kwargs):
            raise AssertionError("a network connection was attempted")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse

        from adapters.clock import ManualClock
        from adapters.eventstore.memory import InMemoryEventStore
        from adapters.memory import InMemoryCache
        from application.ai import ListingBrief
        from entrypoints.ai import build_enrichment
        from entrypoints.config import load_settings

        async def main():
            clock = ManualClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
            use_case = build_enrichment(load_settings({}), InMemoryEventStore(), clock, InMemoryCache(clock))
            brief = ListingBrief("c", "NEWUSDT", "New", clock.now(), timedelta(minutes=30), "ready", Decimal("0.95"))
            result = await use_case(brief)
            print(result.opinion.provider, result.opinion.score)

        asyncio.run(main())
        loaded = sorted(m for m in ("openai", "anthropic", "cohere", "httpx2") if sys.modules.get(m) is not None)
        print("sdks:", loaded)
    """)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["rules 95", "sdks: []"]
