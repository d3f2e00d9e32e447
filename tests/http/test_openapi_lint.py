"""Redocly CLI's `recommended` lint of the OpenAPI document the API serves (issue 17): 0 errors and 0
warnings, save the findings tools/openapi-lint/.redocly.lint-ignore.yaml lists with their reasons.

Redocly is an npm package, pinned with its lockfile in tools/openapi-lint: the test installs it from
that lockfile (`npm ci --prefix tools/openapi-lint`, from the npm registry) the first time it runs, so
the README's test command and .ci/run stay one command. Without Node.js and npm, or when that install
fails, the lint test skips on a laptop and fails in CI (CI=true)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.http.guards import PUBLIC_PATHS
from tests.http.conftest import make_app

LINT = Path(__file__).resolve().parents[2] / "tools" / "openapi-lint"
CLI = LINT / "node_modules" / "@redocly" / "cli" / "bin" / "cli.js"
INSTALL = "npm ci --prefix tools/openapi-lint"
# Redocly sends usage telemetry and checks for updates unless told not to: nothing leaves this machine.
QUIET = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
         "REDOCLY_SUPPRESS_NOTIFICATIONS": "true", "DO_NOT_TRACK": "1"}


async def served_document() -> dict:
    app, container = make_app()
    try:
        async with AsyncTestClient(app=app) as client:
            response = await client.get("/schema/openapi.json")
            assert response.status_code == 200
            return response.json()
    finally:
        await container.close()


def install() -> str | None:
    """Redocly from its lockfile when it is not there yet: None, or why it could not be."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (Debian: apt-get install nodejs npm)"
    run = subprocess.run([npm, "ci", "--prefix", str(LINT), "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S603
                         env={**os.environ, **QUIET}, capture_output=True, text=True, timeout=600, check=False)
    return None if run.returncode == 0 and CLI.is_file() else f"{INSTALL} failed: {run.stderr.strip()[-500:]}"


def node() -> str:
    """The node binary, with Redocly installed; otherwise a skip (a failure in CI) saying how."""
    found = shutil.which("node")
    missing = ("Node.js is not installed (Debian: apt-get install nodejs npm)" if found is None
               else None if CLI.is_file() else install())
    if missing is None:
        return str(found)
    if os.environ.get("CI") == "true":
        pytest.fail(f"the OpenAPI lint cannot run in CI: {missing}")
    pytest.skip(f"OpenAPI lint: {missing}")


async def test_the_document_passes_redocly_recommended_lint(tmp_path: Path) -> None:
    binary = node()
    for config in ("redocly.yaml", ".redocly.lint-ignore.yaml"):
        shutil.copy(LINT / config, tmp_path / config)
    (tmp_path / "openapi.json").write_text(json.dumps(await served_document(), indent=1))
    run = subprocess.run([binary, str(CLI), "lint", "--format=json", "openapi.json"],  # noqa: S603 - our own files
                         cwd=tmp_path, env={**os.environ, **QUIET}, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.stdout.strip(), f"redocly printed no report (exit {run.returncode}): {run.stderr[-2000:]}"
    report = json.loads(run.stdout)
    problems = [f"{p['severity']} {p['ruleId']} {p['location'][0]['pointer']}: {p['message']}"
                for p in report["problems"] if p["severity"] in ("error", "warn")]
    assert problems == [], "redocly lint (tools/openapi-lint/redocly.yaml) finds:\n" + "\n".join(problems)
    assert report["totals"]["errors"] == 0 and report["totals"]["warnings"] == 0 and run.returncode == 0


async def test_public_operations_say_they_need_no_token_and_the_others_the_bearer() -> None:
    """`security: []` is the document's "no authentication": exactly the routes the bearer middleware
    lets through (guards.PUBLIC_PATHS); every other operation needs the bearer token."""
    document = await served_document()
    public = re.compile("|".join(PUBLIC_PATHS))
    seen = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                expected = [] if public.match(path) else [{"bearer": []}]
                assert operation.get("security") == expected, (method, path, operation.get("security"))
                seen.add(bool(public.match(path)))
    assert seen == {True, False}
