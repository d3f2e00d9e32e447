"""Fakes for the HTTP tests: a token verifier, a credential vault and checker."""

from __future__ import annotations

from datetime import datetime

from dishka import Provider, Scope, provide

from application.credentials import (
    ApiCredentials,
    CredentialChecker,
    CredentialCheckResult,
    CredentialsRecord,
    CredentialSummary,
    CredentialVault,
    api_key_hint,
    append_before_change,
)
from application.identity import Identity, IdentityVerifier, InvalidToken
from entrypoints.http.auth import SignInFlow

ALICE, BOB = "alice", "bob"


def token_for(user_id: str) -> str:
    return f"tok-{user_id}"


def auth(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


class FakeVerifier:
    """`tok-<user>` is <user>; anything else is refused."""

    async def verify(self, bearer_token: str) -> Identity:
        if not bearer_token.startswith("tok-") or len(bearer_token) <= 4:
            raise InvalidToken("unknown token")
        return Identity(bearer_token[4:], f"{bearer_token[4:]}@example.com")


class FakeVault:
    def __init__(self) -> None:
        self.held: dict[str, tuple[ApiCredentials, CredentialSummary]] = {}

    async def put(
        self, user_id: str, credentials: ApiCredentials, at: datetime, record: CredentialsRecord | None = None
    ) -> CredentialSummary:
        previous = self.held.get(user_id)
        version = previous[1].key_version if previous else 1
        stored_at = previous[1].stored_at if previous else at
        summary = CredentialSummary(user_id, api_key_hint(credentials.api_key), version, stored_at, at)
        if record is not None:
            await append_before_change(record, user_id, previous[1] if previous else None, summary)
        self.held[user_id] = (credentials, summary)
        return summary

    async def summary(self, user_id: str) -> CredentialSummary | None:
        found = self.held.get(user_id)
        return found[1] if found else None

    async def reveal(self, user_id: str) -> ApiCredentials | None:
        found = self.held.get(user_id)
        return found[0] if found else None

    async def delete(self, user_id: str, record: CredentialsRecord | None = None) -> bool:
        previous = self.held.get(user_id)
        if previous is None:
            return False
        if record is not None:
            await append_before_change(record, user_id, previous[1], None)
        del self.held[user_id]
        return True


class FakeChecker:
    """Keys starting with 'good' pass (read-only); 'trade' in the key also allows trading."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    async def check(self, credentials: ApiCredentials) -> CredentialCheckResult:
        self.checked.append(credentials.api_key)
        ok = credentials.api_key.startswith("good")
        return CredentialCheckResult(ok, ok and "trade" in credentials.api_key, "account read" if ok else "key refused")


class FakeSecurity(Provider):
    """The security adapters of the HTTP container, faked (see entrypoints/http/providers.py)."""

    @provide(scope=Scope.APP)
    def verifier(self) -> IdentityVerifier:
        return FakeVerifier()

    @provide(scope=Scope.APP)
    def vault(self) -> CredentialVault:
        return FakeVault()

    @provide(scope=Scope.APP)
    def checker(self) -> CredentialChecker:
        return FakeChecker()

    @provide(scope=Scope.APP)
    def sign_in(self) -> SignInFlow:
        return SignInFlow(None)  # no Kinde: tests/http/test_sign_in.py gives a real flow on a fake Kinde


async def seed_position(store, user_id: str, coin: str, at: datetime) -> tuple[str, str]:  # noqa: ANN001
    """A target of `user_id` that filled and opened a position; returns (target id, position id)."""
    from decimal import Decimal

    from application import repository
    from domain.events import Cause
    from domain.exit_plans import PRESETS
    from domain.listing import target_id_for
    from domain.position import Position
    from domain.target import SnipeTarget
    from domain.values import Symbol

    symbol = Symbol(coin, "USDT")
    target_id = target_id_for(user_id, f"coin-{coin}")
    cause = Cause(at, target_id)
    plan = PRESETS["balanced"]
    target = SnipeTarget.create(
        target_id, user_id, f"coin-{coin}", symbol, at, Decimal("10"), plan, Decimal(1), False, cause
    )
    position = Position.open(
        target_id, user_id, symbol, Decimal("0.5"), Decimal("20"), Decimal("10"), Decimal("0.01"), "USDT", 2, plan,
        cause,
    )
    await repository.save(store, target, position)
    return target_id, position.stream_id.removeprefix("position-")
