"""Static checks in the test command: ruff with the rules of pyproject.toml ([tool.ruff.lint]) on the
whole tree, and mypy ([tool.mypy]) on domain, application, adapters, entrypoints and tests/fakes, both
with no finding."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a reviewer expects at least (issue 17); pyproject may select more, never less.
EXPECTED_RULES = {"E", "W", "F", "I", "B", "UP", "SIM", "ASYNC", "DTZ", "S"}
TYPED_PACKAGES = {"domain", "application", "adapters", "entrypoints", "tests/fakes"}


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return path


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_ruff_selects_the_expected_rules_at_the_declared_line_length() -> None:
    ruff = _pyproject()["tool"]["ruff"]
    assert set(ruff["lint"]["select"]) >= EXPECTED_RULES
    assert ruff["line-length"] == 120
    assert "E501" not in ruff["lint"].get("ignore", [])
    # Production code gets every rule: only tests, scenarios, benchmarks and named files are relaxed.
    for pattern in ruff["lint"].get("per-file-ignores", {}):
        assert not pattern.startswith(("domain", "application", "adapters/**", "entrypoints")), pattern


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "--quiet", "--output-format", "concise", str(ROOT)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_typed_layers() -> None:
    assert set(_pyproject()["tool"]["mypy"]["files"]) == TYPED_PACKAGES
    # The config file's own settings (files, check_untyped_defs, warn_unused_ignores ...) apply; the
    # incremental cache (.mypy_cache) makes a run after the first take about a second.
    result = subprocess.run(
        [_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
