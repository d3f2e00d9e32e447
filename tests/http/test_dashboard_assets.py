"""The dashboard's page and files as the API serves them (no browser: tests/browser drives one)."""

from __future__ import annotations

import re
from importlib import resources

from litestar.testing import AsyncTestClient

from tests.http.support import auth as auth_of

STATIC = resources.files("entrypoints.http") / "static"


async def test_the_page_answers_without_a_token_under_a_strict_policy(client: AsyncTestClient) -> None:
    answer = await client.get("/", headers={"Host": "127.0.0.1:8080"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"


async def test_static_files_are_served_with_their_type_and_the_policy(client: AsyncTestClient) -> None:
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")):
        answer = await client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(kind)
        assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert (await client.get("/static/missing.js")).status_code == 404
    assert (await client.get("/static/..%2F__init__.py")).status_code in (400, 404)


async def test_the_api_keeps_its_own_policy(client: AsyncTestClient) -> None:
    answer = await client.get("/health")
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_a_forged_host_header_is_not_echoed_into_the_policy(client: AsyncTestClient) -> None:
    answer = await client.get("/", headers={"Host": "evil.example; script-src *"})
    policy = answer.headers["content-security-policy"]
    assert "evil" not in policy and "connect-src 'self';" in policy


def test_the_page_loads_nothing_from_elsewhere_and_has_no_inline_code() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)
    for entry in STATIC.iterdir():
        text = entry.read_text()
        found = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}", text)
        urls = [u for u in found if not u.endswith("//www.w3.org")]  # SVG's namespace: a name, never fetched
        assert urls == [], f"{entry.name} names another origin: {urls}"
    for referenced in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert (STATIC / referenced).is_file(), referenced


async def test_a_backtest_runs_over_the_bundled_listings(client: AsyncTestClient) -> None:
    assert (await client.post("/api/v1/backtests", json={})).status_code == 401
    auth = auth_of("alice")
    answer = await client.post("/api/v1/backtests", json={"strategies": ["balanced"]}, headers=auth)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["listings"] > 0 and [s["name"] for s in report["strategies"]] == ["balanced"]
    balanced = report["strategies"][0]
    assert len(balanced["equity"]) == len(balanced["equity_points"]) >= 1
    assert balanced["equity"][-1] == balanced["total_pnl"]
    unknown = await client.post("/api/v1/backtests", json={"strategies": ["nope"]}, headers=auth)
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]
    fee = await client.post("/api/v1/backtests", json={"fee_rate": "0.5"}, headers=auth)
    assert fee.status_code == 422 and "fee rate must be at least 0 and below 0.1" in fee.json()["detail"]


async def test_a_listing_without_an_analysis_answers_404(client: AsyncTestClient) -> None:
    answer = await client.get("/api/v1/listings/nothing-1/analysis", headers=auth_of("alice"))
    assert answer.status_code == 404 and "no analysis of listing nothing-1" in answer.json()["detail"]
