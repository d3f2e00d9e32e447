"""`sniper serve` refuses the development identity on any address but loopback: without Kinde,
`Bearer dev` is SNIPER_USER, whose live orders use the operator's MEXC keys."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from application.errors import ConfigurationError
from entrypoints.config import load_settings
from entrypoints.http.serve import refuse_development_identity_on_network, serve

KINDE = {"KINDE_DOMAIN": "sniper.kinde.com", "KINDE_AUDIENCE": "https://api.sniper.example"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_is_fine(host: str) -> None:
    refuse_development_identity_on_network(load_settings({}), host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "10.1.2.3", "fe80::1", "sniper.example", "myhost"])
def test_any_other_address_is_refused_in_one_line_naming_the_way_out(host: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        refuse_development_identity_on_network(load_settings({}), host)
    message = str(refused.value)
    assert "\n" not in message and f"refused on {host}" in message
    assert "KINDE_DOMAIN" in message and "SNIPER_DEV_IDENTITY_ON_NETWORK=1" in message


def test_kinde_may_listen_anywhere() -> None:
    refuse_development_identity_on_network(load_settings(KINDE), "0.0.0.0")


def test_the_explicit_opt_in_lets_it_listen_on_the_network_and_says_so_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        refuse_development_identity_on_network(load_settings({"SNIPER_DEV_IDENTITY_ON_NETWORK": "1"}), "0.0.0.0")
    assert any("SNIPER_DEV_IDENTITY_ON_NETWORK=1" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_a_bad_opt_in_value_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="SNIPER_DEV_IDENTITY_ON_NETWORK must be 0 or 1"):
        load_settings({"SNIPER_DEV_IDENTITY_ON_NETWORK": "please"})


async def test_serve_on_sniper_http_host_0000_refuses_before_opening_anything() -> None:
    settings = load_settings({"SNIPER_HTTP_HOST": "0.0.0.0", "DATABASE_URL": "memory://"})
    out = io.StringIO()
    with pytest.raises(ConfigurationError, match="development identity"):
        await asyncio.wait_for(serve(settings, out), 30)  # it would serve until stopped
    assert out.getvalue() == ""
