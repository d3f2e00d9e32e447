"""No secret is ever printed: every variable marked secret and every URL variable, set to values
carrying a marker (good values and malformed ones, to reach every error path), through
`sniper config` and load_settings. A URL variable's password and secret-looking query
parameters are masked; the rest of it stays readable."""

from __future__ import annotations

import io
import os

import pytest

from adapters.security.sealing import encode_key
from application.errors import ConfigurationError
from entrypoints.cli import main
from entrypoints.config import ENV_VARS, SECRET_VARS, URL_VARS, load_settings
from entrypoints.redact import mask_url

MARK = "Mk7q2secretZ"

# Values that let a variable's own check run (instead of failing earlier on a missing partner).
PARTNERS: dict[str, dict[str, str]] = {
    "MEXC_API_KEY": {"MEXC_SECRET_KEY": "partner-secret"},
    "MEXC_SECRET_KEY": {"MEXC_API_KEY": "partner-key"},
    "ENCRYPTION_OLD_KEYS": {"ENCRYPTION_KEY": encode_key(bytes(range(32)), 3)},
    "KINDE_CLIENT_SECRET": {"KINDE_DOMAIN": "sniper.kinde.com", "KINDE_AUDIENCE": "aud", "KINDE_CLIENT_ID": "cid",
                            "KINDE_REDIRECT_URL": "https://sniper.example/auth/callback"},
    "SNIPER_ALERT_WEBHOOK_SECRET": {"SNIPER_ALERT_WEBHOOK_URL": "https://hooks.example/alert"},
    "TELEGRAM_BOT_TOKEN": {"TELEGRAM_CHAT_ID": "12345"},
    "KINDE_REDIRECT_URL": {"KINDE_DOMAIN": "sniper.kinde.com", "KINDE_AUDIENCE": "aud", "KINDE_CLIENT_ID": "cid",
                           "KINDE_CLIENT_SECRET": "partner-secret"},
    "KINDE_ISSUER_URL": {"KINDE_AUDIENCE": "aud"},
}


# URLs that are a credential as a whole (the secret is in the path): never shown at all. Elsewhere
# a URL's path is no secret, and mask_url leaves it readable.
WHOLE_URL_SECRETS = {"SLACK_WEBHOOK_URL", "SNIPER_ALERT_WEBHOOK_URL"}


def url_shapes(scheme: str) -> list[str]:
    """Well-formed and malformed URLs with the marker where a secret goes."""
    return [
        f"{scheme}://user:{MARK}@host.example:1234/path",
        f"{scheme}://:{MARK}@host.example:1234/0",
        f"{scheme}://{MARK}@host.example/",
        f"{scheme}://host.example/path?password={MARK}&x=1",
        f"{scheme}://host.example/path?token={MARK}#sig={MARK}",
        f"{scheme}://user:{MARK}@",  # no host
        f"{scheme}://:{MARK}",  # the '@' lost
        f"{scheme}://us er:{MARK}@host.example",  # a space
        f"{scheme}:/user:{MARK}@host.example",  # one slash
        f"user:{MARK}@host.example:1234",  # no scheme
        f"{scheme}://user:p@ss{MARK}@host.example",  # an '@' not encoded
        f"{scheme}://user:{MARK}/x@host.example",  # a '/' not encoded
    ]


def secret_values(name: str) -> list[str]:
    values = [MARK, f"{MARK} {MARK}", f"1:{MARK}", f"123456:{MARK}", f"2:{MARK}==", encode_key(MARK.encode() * 3
              + b"\0" * (32 - 3 * len(MARK)), 1)]
    if name in URL_VARS or name.endswith("_URL"):
        for scheme in ("https", "http", "redis", "postgresql", "sqlite+aiosqlite", "bogus"):
            values += url_shapes(scheme)
    if name in WHOLE_URL_SECRETS:
        values += [f"https://hooks.slack.com/services/T0/B0/{MARK}", f"hooks.slack.com/services/{MARK}"]
    return values


class Leaks:
    """Where a secret shows: load_settings' error, or `sniper config`'s output or error. (The
    command prints load_settings' error as it is, so it runs for every value that loads, whose
    output is shown, and for the first of each variable's values that do not.)"""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.found: dict[str, list[str]] = {}
        self.errors_shown: set[str] = set()

    def check(self, name: str, env: dict[str, str], secret: str) -> None:
        found = []
        try:
            load_settings(env)
        except ConfigurationError as exc:
            if secret in str(exc):
                found.append(f"load_settings: {exc}")
            if name in self.errors_shown:
                self._note(name, env, found)
                return
            self.errors_shown.add(name)
        found += sniper_config(env, secret, self.capsys)
        self._note(name, env, found)

    def _note(self, name: str, env: dict[str, str], found: list[str]) -> None:
        if found:
            self.found[f"{name}={env[name]}"] = found


def sniper_config(env: dict[str, str], secret: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    found = []
    saved = dict(os.environ)
    try:
        for name in {v.name for v in ENV_VARS} | SECRET_VARS | URL_VARS:
            os.environ.pop(name, None)
        os.environ.update(env)
        out, err = io.StringIO(), io.StringIO()
        main(["config"], out=out, err=err)
        captured = capsys.readouterr()
        for where, text in (("stdout", out.getvalue()), ("stderr", err.getvalue()),
                            ("process output", captured.out + captured.err)):
            if secret in text:
                found.append(f"{where}: {text[-300:]!r}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return found


def the_secret_in(value: str) -> str:
    """The part of a value that must not show: the marker, or a whole generated key."""
    return MARK if MARK in value else value.split(":", 1)[1]


@pytest.mark.parametrize("name", sorted(SECRET_VARS))
def test_a_secret_variable_is_never_printed(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    leaks = Leaks(capsys)
    for value in secret_values(name):
        for env in ({name: value}, {**PARTNERS.get(name, {}), name: value}):
            leaks.check(name, env, the_secret_in(value))
    assert leaks.found == {}


@pytest.mark.parametrize("name", sorted(URL_VARS - SECRET_VARS))
def test_a_url_variable_is_shown_with_its_secrets_masked(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    leaks = Leaks(capsys)
    for scheme in ("https", "http", "wss", "redis", "bogus"):
        for value in url_shapes(scheme):
            leaks.check(name, {**PARTNERS.get(name, {}), name: value}, MARK)
    assert leaks.found == {}


def test_every_url_variable_is_known_as_one() -> None:
    """A new variable holding a URL is masked only if URL_VARS knows it: by its name (_URL,
    _ENDPOINT). One with another name would need adding there."""
    assert [v.name for v in ENV_VARS if "://" in v.shown_default and v.name not in URL_VARS] == []
    assert {"MEXC_BASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "REDIS_URL", "DATABASE_URL"} <= URL_VARS


def test_sniper_config_shows_a_url_with_only_its_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEXC_BASE_URL", f"https://trader:{MARK}@api.mexc.example")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://collector.example:4318/?api_key={MARK}&region=eu")
    out = io.StringIO()
    assert main(["config"], out=out, err=io.StringIO()) == 0
    assert MARK not in out.getvalue()
    assert "current: https://trader:***@api.mexc.example\n" in out.getvalue()
    assert "current: http://collector.example:4318/?api_key=***&region=eu\n" in out.getvalue()


def test_a_malformed_redis_url_is_named_with_its_password_masked() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"REDIS_URL": f"http://:{MARK}@cache.example:6379/0"})
    assert str(caught.value) == "REDIS_URL must be a redis://, rediss:// or unix:// URL, got 'http://***@cache.example:6379/0'"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
    ("postgresql://app:pw@db:5432/x?sslmode=require", "postgresql://app:***@db:5432/x?sslmode=require"),
    ("https://TOKEN@host/p", "https://***@host/p"),
    ("https://h/cb?code=1&access_token=abc&Signature=s", "https://h/cb?code=1&access_token=***&Signature=***"),
    ("https://h/#id_token=abc&x=1", "https://h/#id_token=***&x=1"),
    ("redis://u:p@ss/w@host", "redis://u:***@host"),  # an '@' the password should have encoded
    ("redis://:pw", "redis://:***"),  # the '@' lost: a port that is no number is no port
    ("user:pw@host", "user:***@host"),
    ("https://api.mexc.com/api/v3?symbol=X", "https://api.mexc.com/api/v3?symbol=X"),
    ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
