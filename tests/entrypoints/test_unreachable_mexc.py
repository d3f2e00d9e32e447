"""Issue 12: with no way to MEXC, the messages say that MEXC cannot be reached and why (DNS,
connection refused, timeout), never "local rate budget spent", "MEXC refused" or a bare "circuit
open". Three MEXCs that cannot be reached, none of them real: a closed local port, a host under
.invalid (a name that never resolves, RFC 6761) and a local port whose connections are accepted
(by the kernel's backlog) and never answered."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli import main

CAUSES = ("refused", "dns", "timeout")


@pytest.fixture
def unreachable(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(MEXC_BASE_URL, what the message must say) for one way of being unreachable."""
    cause = request.param
    if cause == "dns":
        yield ("https://mexc.invalid",
               "MEXC cannot be reached at https://mexc.invalid: DNS: the host name does not resolve")
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    if cause == "refused":
        sock.close()  # nothing listens there now
        yield url, f"MEXC cannot be reached at {url}: connection refused"
        return
    sock.listen(64)  # connections complete in the backlog; nothing ever reads or answers
    try:
        yield url, f"no reply from MEXC at {url} within 5 s (timeout)"
    finally:
        sock.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unreachable: tuple[str, str]) -> tuple[str, str]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    monkeypatch.setenv("MEXC_BASE_URL", unreachable[0])
    for name in ("MEXC_API_KEY", "MEXC_SECRET_KEY", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return unreachable


def sniper(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
def test_mexc_check_says_mexc_cannot_be_reached_and_why(env: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEXC_API_KEY", "mx0vDummyKey000000")
    monkeypatch.setenv("MEXC_SECRET_KEY", "DummySecret0000000000")
    code, out, err = sniper("mexc", "check")
    assert code == 1 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith("[FAIL] ping: ") and env[1] in lines[0], out
    for text in lines[1:]:
        # Each later call fails for the same reason, or is not tried: never our own bookkeeping.
        assert env[1] in text or text.endswith("not tried: MEXC could not be reached (see above)"), out
    assert "rate budget" not in out and "circuit open" not in out and "DummySecret" not in out


@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
def test_a_paper_snipe_says_mexc_cannot_be_reached_and_why(env: tuple[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNIPER_SNIPE_WINDOW_SECONDS", "3")
    code, out, err = sniper("snipe", "NEWUSDT", "--quote-amount", "10")
    assert code == 1, out + err
    warning = [text for text in out.splitlines() if text.startswith("warning: ")]
    assert warning and env[1] in warning[0], out
    last = out.splitlines()[-1]
    assert last.startswith("failed: "), out
    if "no fill by the deadline" in last:  # the last reply names the cause, not just the breaker
        assert env[1] in last, last
