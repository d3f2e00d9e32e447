"""Headless Chromium for the dashboard's tests: Debian's `chromium`, driven by Playwright's Python
client through `executable_path` (Playwright's own browser downloads are never used).

A laptop without chromium skips these tests, saying how to install it; CI (CI or
SNIPER_REQUIRE_SERVICES=1) fails instead, and .ci/run installs it. One browser per module.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import services_required

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
NO_CHROMIUM = ("the browser tests need Debian's chromium at /usr/bin/chromium (or SNIPER_CHROMIUM): "
               "apt-get install chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str | None:
    configured = os.environ.get("SNIPER_CHROMIUM", "").strip()
    for candidate in (configured, "/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def screenshots_wanted() -> bool:
    """SNIPER_SCREENSHOTS=1 writes the README's screenshots (docs/screenshots/)."""
    return os.environ.get("SNIPER_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        if services_required():
            pytest.fail(f"{NO_CHROMIUM} [required: CI or SNIPER_REQUIRE_SERVICES=1]", pytrace=False)
        pytest.skip(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # the dev extra not installed
        if services_required():
            raise
        pytest.skip("the browser tests need Playwright's client: .venv/bin/pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
