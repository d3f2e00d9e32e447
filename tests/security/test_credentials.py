"""The credential use cases (record, validate, check) and the MEXC read-only check."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.clock import ManualClock
from adapters.credentials.memory import MemoryCredentialVault
from adapters.eventstore.codec import encode_event
from adapters.eventstore.memory import InMemoryEventStore
from adapters.mexc.credential_check import MexcCredentialChecker
from adapters.mexc.limits import CircuitBreakers, RateLimiter
from adapters.security.sealing import KeyRing
from application.credentials import (
    ApiCredentials,
    CredentialCheckResult,
    DeleteCredentials,
    GetCredentialSummary,
    StoreCredentials,
    TestCredentials,
    api_key_hint,
)
from application.errors import ConcurrencyConflict, InvalidInput, NotFound
from domain.events import CredentialsDeleted, CredentialsRotated, CredentialsStored, Recorded
from tests.fakes.mexc_http import ACCOUNT, ORDER, ORDER_TEST, FakeMexcServer
from tests.security.support import API_KEY, CREDENTIALS, SECRET_KEY, T0, find_leaks


@pytest.fixture
def vault() -> MemoryCredentialVault:
    return MemoryCredentialVault(KeyRing.generate(version=4))


async def test_storing_then_replacing_records_both_with_hint_and_version_only(vault: MemoryCredentialVault) -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    first = await StoreCredentials(vault, store, clock)("alice", CREDENTIALS)
    clock.advance(timedelta(minutes=5))
    newer = ApiCredentials("mx0vglNewerKey99887766", "NewerSecret998877665544")
    second = await StoreCredentials(vault, store, clock)("alice", newer)
    assert (first.key_version, second.stored_at, second.updated_at) == (4, T0, T0 + timedelta(minutes=5))

    history = await store.load("credentials-alice")
    assert [(r.version, r.user_id, r.occurred_at) for r in history] == [(1, "alice", T0), (2, "alice", clock.now())]
    assert history[0].event == CredentialsStored(key_version=4, api_key_hint="mx0v…xYz9")
    assert history[1].event == CredentialsRotated(key_version=4, api_key_hint="mx0v…7766")
    assert API_KEY not in repr(history) and SECRET_KEY not in repr(history)
    assert await GetCredentialSummary(vault)("alice") == second
    assert await vault.reveal("alice") == newer


async def test_summary_and_delete(vault: MemoryCredentialVault) -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    await StoreCredentials(vault, store, clock)("bob", CREDENTIALS)
    assert (await GetCredentialSummary(vault)("bob")).api_key_hint == "mx0v…xYz9"  # type: ignore[union-attr]
    assert await DeleteCredentials(vault, store, clock)("bob") is True
    assert await DeleteCredentials(vault, store, clock)("bob") is False
    assert await GetCredentialSummary(vault)("bob") is None


async def test_deleting_records_exactly_one_event_without_key_material(vault: MemoryCredentialVault) -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    await StoreCredentials(vault, store, clock)("alice", CREDENTIALS)
    clock.advance(timedelta(minutes=3))
    assert await DeleteCredentials(vault, store, clock)("alice") is True
    assert await DeleteCredentials(vault, store, clock)("alice") is False  # nothing left: nothing more recorded

    history = await store.load("credentials-alice")
    assert [type(r.event) for r in history] == [CredentialsStored, CredentialsDeleted]
    deleted = history[1]
    assert (deleted.version, deleted.user_id, deleted.occurred_at) == (2, "alice", T0 + timedelta(minutes=3))
    assert deleted.event == CredentialsDeleted(key_version=4, api_key_hint="mx0v…xYz9")
    name, payload = encode_event(deleted.event)
    assert name == "CredentialsDeleted"
    assert find_leaks(payload + repr(deleted).encode(), API_KEY, SECRET_KEY) == []
    # storing again afterwards is a first store, not a rotation
    await StoreCredentials(vault, store, clock)("alice", CREDENTIALS)
    assert type((await store.load("credentials-alice"))[-1].event) is CredentialsStored


async def test_deleting_when_nothing_is_stored_records_nothing(vault: MemoryCredentialVault) -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    await StoreCredentials(vault, store, clock)("bob", CREDENTIALS)
    assert await DeleteCredentials(vault, store, clock)("alice") is False
    assert [r.stream_id for r in await store.read_all()] == ["credentials-bob"]
    assert await vault.summary("bob") is not None


class RacingStore(InMemoryEventStore):
    """Another writer appends to the stream between our load and our append, `races` times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def append(self, events):  # noqa: ANN001, ANN201
        if self.races > 0:
            self.races -= 1
            stream = events[0].stream_id
            other = CredentialsRotated(key_version=4, api_key_hint="othe…rone")
            await super().append([Recorded(stream, len(await self.load(stream)) + 1, T0, "alice", stream, other)])
        return await super().append(events)


async def test_deleting_retries_a_version_clash_and_is_recorded_after_the_other(vault: MemoryCredentialVault) -> None:
    store, clock = RacingStore(races=0), ManualClock(T0)
    await StoreCredentials(vault, store, clock)("alice", CREDENTIALS)
    store.races = 2
    assert await DeleteCredentials(vault, store, clock, attempts=3)("alice") is True
    assert [type(r.event) for r in await store.load("credentials-alice")] == [
        CredentialsStored, CredentialsRotated, CredentialsRotated, CredentialsDeleted]


async def test_a_delete_that_cannot_be_recorded_fails_and_keeps_the_keys(vault: MemoryCredentialVault) -> None:
    store, clock = RacingStore(races=0), ManualClock(T0)
    await StoreCredentials(vault, store, clock)("alice", CREDENTIALS)
    store.races = 3
    with pytest.raises(ConcurrencyConflict):
        await DeleteCredentials(vault, store, clock, attempts=3)("alice")
    assert await vault.reveal("alice") == CREDENTIALS  # the delete and its record are one unit
    assert CredentialsDeleted not in [type(r.event) for r in await store.load("credentials-alice")]


async def test_a_store_or_rotation_that_cannot_be_recorded_fails_and_changes_nothing(
    vault: MemoryCredentialVault,
) -> None:
    class BrokenStore(InMemoryEventStore):
        broken = False

        async def append(self, events):  # noqa: ANN001, ANN201
            if self.broken:
                raise OSError("disk full")
            return await super().append(events)

    store = BrokenStore()
    store.broken = True
    with pytest.raises(OSError, match="disk full"):
        await StoreCredentials(vault, store, ManualClock(T0))("alice", CREDENTIALS)
    assert await vault.summary("alice") is None
    store.broken = False
    await StoreCredentials(vault, store, ManualClock(T0))("alice", CREDENTIALS)
    store.broken = True
    with pytest.raises(OSError, match="disk full"):
        await StoreCredentials(vault, store, ManualClock(T0))(
            "alice", ApiCredentials("mx0vglNewerKey99887766", "NewerSecret998877665544")
        )
    assert await vault.reveal("alice") == CREDENTIALS
    assert [type(r.event) for r in await store.load("credentials-alice")] == [CredentialsStored]


@pytest.mark.parametrize(("api_key", "secret", "field", "rule"), [
    ("", SECRET_KEY, "api_key", "required"),
    (API_KEY, "", "secret_key", "required"),
    ("short", SECRET_KEY, "api_key", "8 to 256"),
    ("k" * 257, SECRET_KEY, "api_key", "8 to 256"),
    (API_KEY, "s" * 513, "secret_key", "8 to 512"),
    ("mx0vgl Key12345", SECRET_KEY, "api_key", "whitespace"),
    (API_KEY, SECRET_KEY + "\n", "secret_key", "whitespace"),
    (API_KEY, "secret\x00value1", "secret_key", "printable"),
    ("mx0vglKéy123456", SECRET_KEY, "api_key", "printable ASCII"),
])
async def test_bad_input_is_refused_naming_the_field_never_the_value(
    vault: MemoryCredentialVault, api_key: str, secret: str, field: str, rule: str
) -> None:
    store = InMemoryEventStore()
    with pytest.raises(InvalidInput, match=rule) as refused:
        await StoreCredentials(vault, store, ManualClock(T0))("alice", ApiCredentials(api_key, secret))
    assert refused.value.field == field
    for value in (api_key, secret):
        if len(value) > 3:
            assert value not in str(refused.value)
    assert await vault.summary("alice") is None and await store.read_all() == []


def test_hints_never_show_more_than_half_the_key() -> None:
    assert api_key_hint("mx0vglQ7TestApiKey2xYz9") == "mx0v…xYz9"
    assert api_key_hint("abcdefgh") == "ab…gh"
    assert api_key_hint("abcdefghijkl") == "abc…jkl"


def test_credentials_never_show_in_repr_or_str() -> None:
    for text in (repr(CREDENTIALS), str(CREDENTIALS), f"{CREDENTIALS}", repr([CREDENTIALS])):
        assert API_KEY not in text and SECRET_KEY not in text


class RecordingChecker:
    def __init__(self) -> None:
        self.seen: list[ApiCredentials] = []

    async def check(self, credentials: ApiCredentials) -> CredentialCheckResult:
        self.seen.append(credentials)
        return CredentialCheckResult(True, True, "fine")


async def test_testing_credentials_uses_the_stored_ones_or_the_given_ones(vault: MemoryCredentialVault) -> None:
    checker = RecordingChecker()
    with pytest.raises(NotFound):
        await TestCredentials(vault, checker)("alice")
    await vault.put("alice", CREDENTIALS, T0)
    assert await TestCredentials(vault, checker)("alice") == CredentialCheckResult(True, True, "fine")
    other = ApiCredentials("mx0vglOtherKey11223344", "OtherSecret112233445566")
    await TestCredentials(vault, checker)("alice", other)
    assert checker.seen == [CREDENTIALS, other]
    with pytest.raises(InvalidInput):
        await TestCredentials(vault, checker)("alice", ApiCredentials("x", "y"))


# --- the MEXC check --------------------------------------------------------------------------

MEXC_KEY, MEXC_SECRET = "mx0vglFakeExchangeKey01", "FakeExchangeSecret0123456789abcd"


class ReadOnlyAccountServer(FakeMexcServer):
    def _account(self, req: Any, params: dict[str, str]) -> Any:
        reply = super()._account(req, params)
        return {**reply, "canTrade": False}


@pytest.fixture
async def mexc() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(api_key=MEXC_KEY, api_secret=MEXC_SECRET, balances={"USDT": "250", "BTC": "0"}) as fake:
        yield fake


def checker_for(server: FakeMexcServer) -> MexcCredentialChecker:
    return MexcCredentialChecker(server.base_url, timeout=2.0, connect_timeout=1.0, backoff_base=0.005,
                                 backoff_cap=0.01,
                                 read_attempts=2, rng=random.Random(3), limiter=RateLimiter(max_wait=0.1),
                                 breakers=CircuitBreakers(failure_threshold=50))


async def test_good_keys_pass_with_read_only_calls(mexc: FakeMexcServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = await checker_for(mexc).check(ApiCredentials(MEXC_KEY, MEXC_SECRET))
    assert result == CredentialCheckResult(True, True, "keys accepted; spot trading allowed; 1 assets held")
    assert mexc.hits[ACCOUNT] == 1
    assert mexc.hits[ORDER] == 0 and mexc.hits[ORDER_TEST] == 0
    assert MEXC_SECRET not in caplog.text


@pytest.mark.parametrize(("key", "secret", "reason"), [
    ("mx0vglSomeoneElsesKey1", MEXC_SECRET, "API key not recognised by MEXC"),
    (MEXC_KEY, "WrongSecret0000000000000000000000", "secret key does not match"),
])
async def test_wrong_keys_fail_with_a_reason(mexc: FakeMexcServer, key: str, secret: str, reason: str) -> None:
    result = await checker_for(mexc).check(ApiCredentials(key, secret))
    assert not result.ok and not result.can_trade
    assert reason in result.detail
    assert secret not in result.detail and key not in result.detail


async def test_keys_without_trading_permission_pass_but_cannot_trade() -> None:
    async with ReadOnlyAccountServer(api_key=MEXC_KEY, api_secret=MEXC_SECRET) as fake:
        result = await checker_for(fake).check(ApiCredentials(MEXC_KEY, MEXC_SECRET))
    assert result.ok and not result.can_trade and "NOT allowed" in result.detail


async def test_an_unreachable_exchange_is_a_failed_check() -> None:
    fake = FakeMexcServer(api_key=MEXC_KEY, api_secret=MEXC_SECRET)
    await fake.start()
    url = fake.base_url
    await fake.stop()
    result = await MexcCredentialChecker(url, timeout=0.5, connect_timeout=0.5, read_attempts=1).check(
        ApiCredentials(MEXC_KEY, MEXC_SECRET))
    assert not result.ok and not result.can_trade and MEXC_SECRET not in result.detail
