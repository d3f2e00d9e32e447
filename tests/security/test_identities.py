"""Identities from the issuer against the API: an issued identity never reaches a reserved id
(the global emergency stop, the command line's user and its MEXC keys), a key the issuer
withdrew stops opening the API within KINDE_JWKS_MAX_AGE_SECONDS, and odd subjects are refused
at the door (4xx) instead of breaking storage. Tokens come from the local issuer
(tests/security/fake_kinde.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from dishka import Scope, provide
from litestar.testing import AsyncTestClient

from adapters.clock import ManualClock, SystemClock
from adapters.kinde.verifier import KindeTokenVerifier
from adapters.mexc.accounts import UserMexcAccounts
from adapters.security.sealing import encode_key
from application import repository
from application.credentials import ApiCredentials
from application.errors import AccountUnavailable
from application.identity import MAX_SUBJECT_CHARS, IdentityVerifier
from application.ports import EventStore
from domain.events import Cause
from domain.safety import GLOBAL_SCOPE, SafetySwitch
from entrypoints.config import Settings, load_settings
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from tests.http.support import FakeSecurity
from tests.security.fake_kinde import AUDIENCE, FakeKinde, rsa_key, sign
from tests.security.support import CREDENTIALS, T0


def token(kinde: FakeKinde, subject: str, key: Any = None, now: int | None = None) -> str:
    now = int(time.time()) if now is None else now
    claims = {"iss": kinde.issuer, "aud": [AUDIENCE], "sub": subject, "iat": now - 5, "exp": now + 3600}
    return sign(key or kinde.keys[0], claims)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class VerifierOnKinde(FakeSecurity):
    """FakeSecurity with a real Kinde verifier (its own clock and settings) on the local issuer."""

    def __init__(self, verifier: KindeTokenVerifier) -> None:
        super().__init__()
        self.verifier_ = verifier

    @provide(scope=Scope.APP)
    def verifier(self) -> IdentityVerifier:
        return self.verifier_


async def _client_on(settings: Settings, security: Any = None) -> AsyncIterator[tuple[AsyncTestClient, Any]]:
    container = http_container(settings, SystemClock(), security)
    app = create_app(container, msgspec.structs.replace(settings, sniper_rate_limit_per_minute=10_000))
    try:
        async with AsyncTestClient(app=app) as client:
            yield client, container
    finally:
        await container.close()


def _kinde_env(kinde: FakeKinde, **extra: str) -> dict[str, str]:
    return {"KINDE_DOMAIN": kinde.issuer, "KINDE_AUDIENCE": AUDIENCE, **extra}


@pytest.fixture
async def api(kinde: FakeKinde) -> AsyncIterator[tuple[AsyncTestClient, Any]]:
    """The API in memory with the production wiring of identities (KINDE_DOMAIN set)."""
    async for pair in _client_on(load_settings(_kinde_env(kinde, DATABASE_URL="memory://"))):
        yield pair


@pytest.fixture
async def api_on_postgres(kinde: FakeKinde, fresh_postgres_database: str) -> AsyncIterator[tuple[AsyncTestClient, Any]]:
    """The API on its own Postgres database, with the real sealed vault (finding 9 is storage)."""
    key = encode_key(b"\x07" * 32, 1)
    env = _kinde_env(kinde, DATABASE_URL=fresh_postgres_database, ENCRYPTION_KEY=key)
    async for pair in _client_on(load_settings(env)):
        yield pair


# --- 2: reserved scopes ------------------------------------------------------------------------

async def test_a_subject_named_global_cannot_touch_the_deployment_wide_stop(api, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, container = api
    store = await container.get(EventStore)
    # The operator's `sniper halt --global`.
    switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
    switch.activate("operator halted everything", "cli:local", Cause(T0, "emergency-stop-global"))
    await repository.save(store, switch)

    cleared = await client.delete("/api/v1/emergency-stop", headers=bearer(token(kinde, GLOBAL_SCOPE)))
    assert cleared.status_code in (200, 409), cleared.text
    bob = await client.get("/api/v1/emergency-stop", headers=bearer(token(kinde, "kp_bob")))
    assert bob.json()["active"] is True and "operator halted everything" in bob.json()["reason"]
    assert (await repository.get(store, SafetySwitch, switch.stream_id)).active

    me = await client.get("/api/v1/me", headers=bearer(token(kinde, GLOBAL_SCOPE)))
    assert me.status_code == 200 and me.json()["user_id"] == "kinde:global"


async def test_a_subject_named_global_halts_only_itself(api, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, _ = api
    pressed = await client.post("/api/v1/emergency-stop", json={"reason": "mine"},
                                headers=bearer(token(kinde, GLOBAL_SCOPE)))
    assert pressed.status_code == 200 and pressed.json()["active"] is True
    bob = await client.get("/api/v1/emergency-stop", headers=bearer(token(kinde, "kp_bob")))
    assert bob.json()["active"] is False


# --- 3: the operator's MEXC keys -----------------------------------------------------------------

async def test_a_subject_equal_to_sniper_user_never_trades_with_the_operators_keys(api, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, container = api
    settings = await container.get(Settings)
    me = await client.get("/api/v1/me", headers=bearer(token(kinde, settings.sniper_user)))
    assert me.status_code == 200
    issued = me.json()["user_id"]
    assert issued != settings.sniper_user

    operator = object()
    accounts = UserMexcAccounts(await _vault(container), paper=object(), make_client=_no_client,  # type: ignore[arg-type]
                                operator=operator, operator_user=settings.sniper_user)  # type: ignore[arg-type]
    assert await accounts.trading_for(settings.sniper_user, live=True) is operator  # the command line's user
    with pytest.raises(AccountUnavailable):
        await accounts.trading_for(issued, live=True)


async def _vault(container: Any) -> Any:
    from application.credentials import CredentialVault

    return await container.get(CredentialVault)


def _no_client(_: ApiCredentials) -> Any:
    raise AssertionError("no user stored keys: no client is made")


# --- 4: withdrawn signing keys -------------------------------------------------------------------

@pytest.fixture
async def rotating(kinde: FakeKinde) -> AsyncIterator[tuple[AsyncTestClient, ManualClock, KindeTokenVerifier]]:
    clock = ManualClock(T0)
    kinde.keys = [rsa_key("kinde-old"), rsa_key("kinde-new")]
    async with httpx.AsyncClient() as http:
        verifier = KindeTokenVerifier(kinde.issuer, AUDIENCE, clock, http, refetch_interval=timedelta(seconds=60),
                                      jwks_max_age=timedelta(seconds=300))
        async for client, _ in _client_on(load_settings({"DATABASE_URL": "memory://"}), VerifierOnKinde(verifier)):
            yield client, clock, verifier


async def test_a_key_withdrawn_from_the_jwks_is_refused_after_the_max_age(rotating, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, clock, _ = rotating
    now: Callable[[], int] = lambda: int(clock.now().timestamp())  # noqa: E731
    old = kinde.keys[0]
    assert (await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", old, now())))).status_code == 200

    kinde.keys = [rsa_key("kinde-new")]  # the issuer withdraws the old key
    clock.advance(timedelta(seconds=299))
    still = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", old, now())))
    assert still.status_code == 200  # within the max age the cached set is trusted
    clock.advance(timedelta(seconds=1))
    refused = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", old, now())))
    assert refused.status_code == 401 and "unknown signing key" in refused.json()["detail"]
    fresh = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", kinde.keys[0], now())))
    assert fresh.status_code == 200


async def test_unknown_key_ids_still_fetch_at_most_once_per_interval(rotating, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, clock, _ = rotating
    now = int(clock.now().timestamp())
    me = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", kinde.keys[1], now)))
    assert me.status_code == 200
    fetched = kinde.jwks_requests

    async def storm() -> None:
        for i in range(30):
            forged = rsa_key(f"made-up-{i % 3}")
            answer = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_eve", forged, now)))
            assert answer.status_code == 401

    await storm()
    assert kinde.jwks_requests == fetched  # fetched less than refetch_interval ago
    clock.advance(timedelta(seconds=61))
    await storm()
    assert kinde.jwks_requests == fetched + 1
    clock.advance(timedelta(seconds=301))  # stale by age too: still one fetch for the whole storm
    await storm()
    assert kinde.jwks_requests == fetched + 2


# --- 9: odd subjects and the credentials' record ---------------------------------------------

async def test_odd_subjects_are_refused_at_the_door_with_a_reason(api_on_postgres, kinde: FakeKinde) -> None:  # noqa: ANN001
    client, _ = api_on_postgres
    keys = {"api_key": CREDENTIALS.api_key, "secret_key": CREDENTIALS.secret_key}
    for subject in ("kp_nul\x00byte", "kp_" + "x" * 190, "kp_é", "kp_new\nline"):
        for method, path, body in (("GET", "/api/v1/targets", None), ("PUT", "/api/v1/credentials", keys)):
            answer = await client.request(method, path, json=body, headers=bearer(token(kinde, subject)))
            assert answer.status_code == 401, (subject, path, answer.status_code, answer.text)
            assert "subject" in answer.json()["detail"]


async def test_the_longest_accepted_subject_stores_credentials_and_records_it(  # noqa: ANN001
    api_on_postgres, kinde: FakeKinde,
) -> None:
    client, _ = api_on_postgres
    subject = "kp_" + "y" * (MAX_SUBJECT_CHARS - 3)
    signed = bearer(token(kinde, subject))
    body = {"api_key": CREDENTIALS.api_key, "secret_key": CREDENTIALS.secret_key}
    put = await client.put("/api/v1/credentials", json=body, headers=signed)
    assert put.status_code == 200, put.text
    audit = await client.get("/api/v1/audit", headers=signed)
    assert [e["type"] for e in audit.json()["items"]] == ["CredentialsStored"]



_REFUSE_EVENTS = """
CREATE FUNCTION h6_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
CREATE TRIGGER h6_refuse BEFORE INSERT ON events FOR EACH ROW
WHEN (NEW.event_type IN ('CredentialsRotated', 'CredentialsDeleted')) EXECUTE FUNCTION h6_refuse_event();
"""


async def test_the_vault_changes_only_with_its_record_on_postgres(fresh_postgres_database: str) -> None:
    """Whatever keeps the event from being recorded (here: a stream id too long for its column,
    or a database refusing the row) leaves the vault as it was: write and record are one unit."""
    from sqlalchemy import text

    from adapters.credentials.sql_vault import SqlCredentialVault
    from adapters.eventstore.migrate import upgrade
    from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
    from adapters.security.sealing import KeyRing
    from application.credentials import DeleteCredentials, StoreCredentials

    engine = make_engine(fresh_postgres_database)
    try:
        await upgrade(engine)
        store, vault, clock = SqlEventStore(engine), SqlCredentialVault(engine, KeyRing.generate()), ManualClock(T0)
        too_long = "u" * (MAX_SUBJECT_CHARS + 7)  # past the edge: only a direct caller can send it
        with pytest.raises(Exception):  # noqa: B017, PT011 - the database's own error, whatever its class
            await StoreCredentials(vault, store, clock)(too_long, CREDENTIALS)
        assert await vault.summary(too_long) is None and await store.read_user(too_long) == []

        await StoreCredentials(vault, store, clock)("kinde:kp_ann", CREDENTIALS)
        async with engine.begin() as conn:
            for statement in _REFUSE_EVENTS.split(";\nCREATE TRIGGER"):
                sql = statement if statement.lstrip().startswith("CREATE FUNCTION") else "CREATE TRIGGER" + statement
                await conn.execute(text(sql))
        newer = ApiCredentials("mx0vglNewerKey99887766", "NewerSecret998877665544")
        with pytest.raises(Exception):  # noqa: B017, PT011
            await StoreCredentials(vault, store, clock)("kinde:kp_ann", newer)
        assert await vault.reveal("kinde:kp_ann") == CREDENTIALS
        with pytest.raises(Exception):  # noqa: B017, PT011
            await DeleteCredentials(vault, store, clock)("kinde:kp_ann")
        assert await vault.reveal("kinde:kp_ann") == CREDENTIALS
        assert [r.event.type_name for r in await store.read_user("kinde:kp_ann")] == ["CredentialsStored"]
    finally:
        await engine.dispose()


# --- the mapping, as invariants --------------------------------------------------------------

SUBJECTS = [
    "local", "global", "system", "safety-monitor", "shared", "kinde:local", "kp_0123abcd", "a", "x" * MAX_SUBJECT_CHARS
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_an_issued_identity_is_never_a_reserved_id_nor_one_the_operator_can_name(subject: str) -> None:
    from application.identity import RESERVED_USER_IDS, issued_user_id, operator_user_id_problem

    user_id = issued_user_id(subject)
    assert user_id not in RESERVED_USER_IDS
    assert operator_user_id_problem(user_id) is not None  # no SNIPER_USER (or legacy subject) can equal it
    assert user_id != load_settings({}).sniper_user


@pytest.mark.parametrize(("name", "value"), [
    ("SNIPER_USER", "global"), ("SNIPER_USER", "system"), ("SNIPER_USER", "kinde:kp_1"), ("SNIPER_USER", "me\x00"),
    ("SNIPER_USER", "u" * 189),
    ("KINDE_LEGACY_SUBJECTS", "kp_1,global"), ("KINDE_LEGACY_SUBJECTS", "local"), (
        "KINDE_LEGACY_SUBJECTS", "kinde:kp_1"
    ),
])
def test_the_operator_cannot_name_a_reserved_or_issued_id(name: str, value: str) -> None:
    from application.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=name):
        load_settings({name: value})


async def test_a_legacy_subject_keeps_the_data_stored_under_its_bare_id(kinde: FakeKinde) -> None:
    from application.credentials import CredentialVault

    settings = load_settings(_kinde_env(kinde, DATABASE_URL="memory://", KINDE_LEGACY_SUBJECTS="kp_old, kp_older"))
    async for client, container in _client_on(settings):
        await (await container.get(CredentialVault)).put("kp_old", CREDENTIALS, T0)  # stored before the upgrade
        old = await client.get("/api/v1/credentials", headers=bearer(token(kinde, "kp_old")))
        assert old.status_code == 200 and old.json()["api_key_hint"] == "mx0v…xYz9"
        me = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_old")))
        assert me.json()["user_id"] == "kp_old"
        other = await client.get("/api/v1/me", headers=bearer(token(kinde, "kp_new")))
        assert other.json()["user_id"] == "kinde:kp_new"
