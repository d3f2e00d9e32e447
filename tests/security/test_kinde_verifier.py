"""Kinde access tokens: the refusal matrix, key rotation and the refetch limit, against a local
JWKS server with RSA keys made here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from adapters.clock import ManualClock
from adapters.kinde.verifier import KindeTokenVerifier, SigningKeysUnavailable, kinde_issuer
from application.identity import Identity, InvalidToken
from tests.security.fake_kinde import AUDIENCE, FakeKinde, rsa_key, sign
from tests.security.support import T0

NOW = int(T0.timestamp())
TLS = ssl.create_default_context()  # loaded once: only plain http is used here, but clients need one


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def verifier(kinde: FakeKinde, clock: ManualClock) -> AsyncIterator[KindeTokenVerifier]:
    async with httpx.AsyncClient(verify=TLS) as http:
        yield KindeTokenVerifier(kinde.issuer, AUDIENCE, clock, http, refetch_interval=timedelta(seconds=60))


def claims(kinde: FakeKinde, **changes: Any) -> dict[str, Any]:
    base = {"iss": kinde.issuer, "aud": [AUDIENCE], "sub": "kp_alice", "iat": NOW - 10, "exp": NOW + 3600,
            "email": "alice@example.test"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def hs256_with_public_key(kinde: FakeKinde, payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the RSA public key's PEM bytes."""
    pem = kinde.keys[0].public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": kinde.keys[0].kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def test_a_good_token_gives_the_identity(verifier: KindeTokenVerifier, kinde: FakeKinde) -> None:
    token = sign(kinde.keys[0], claims(kinde))
    assert await verifier.verify(token) == Identity("kinde:kp_alice", "alice@example.test", development=False)
    assert kinde.jwks_requests == 1
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde, aud=AUDIENCE, email=None))) == Identity(
        "kinde:kp_alice"
    )
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde, aud=["other", AUDIENCE]))) == Identity(
        "kinde:kp_alice", "alice@example.test")
    assert kinde.jwks_requests == 1  # cached


async def test_expiry_has_a_small_leeway(verifier: KindeTokenVerifier, kinde: FakeKinde) -> None:
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde, exp=NOW - 20)))  # within 30 s
    with pytest.raises(InvalidToken, match="^token expired$"):
        await verifier.verify(sign(kinde.keys[0], claims(kinde, exp=NOW - 31)))


async def test_time_comes_from_the_injected_clock(verifier: KindeTokenVerifier, kinde: FakeKinde,
                                                  clock: ManualClock) -> None:
    token = sign(kinde.keys[0], claims(kinde, exp=NOW + 60))
    assert await verifier.verify(token)
    clock.advance(timedelta(seconds=120))
    with pytest.raises(InvalidToken, match="token expired"):
        await verifier.verify(token)


REFUSALS: list[tuple[str, Any, str]] = [
    ("wrong issuer", lambda k: sign(k.keys[0], claims(k, iss="https://evil.kinde.com")), "wrong issuer"),
    ("issuer with a trailing part", lambda k: sign(k.keys[0], claims(k, iss=k.issuer + ".evil")), "wrong issuer"),
    ("no issuer", lambda k: sign(k.keys[0], claims(k, iss=None)), "lacks claim iss"),
    ("wrong audience", lambda k: sign(k.keys[0], claims(k, aud=["https://other.api"])), "wrong audience"),
    ("no audience", lambda k: sign(k.keys[0], claims(k, aud=None)), "lacks claim aud"),
    ("expired", lambda k: sign(k.keys[0], claims(k, iat=NOW - 7200, exp=NOW - 3600)), "token expired"),
    ("no expiry", lambda k: sign(k.keys[0], claims(k, exp=None)), "lacks claim exp"),
    ("not yet valid", lambda k: sign(k.keys[0], claims(k, nbf=NOW + 600)), "not yet valid"),
    ("issued in the future", lambda k: sign(k.keys[0], claims(k, iat=NOW + 600)), "issued in the future"),
    ("no subject", lambda k: sign(k.keys[0], claims(k, sub=None)), "lacks claim sub"),
    ("empty subject", lambda k: sign(k.keys[0], claims(k, sub="")), "bad subject"),
    ("subject with a NUL", lambda k: sign(k.keys[0], claims(k, sub="kp_a\x00b")), "token subject refused"),
    (
        "subject too long for storage", lambda k: sign(k.keys[0], claims(k, sub="kp_" + "x" * 180)),
        "token subject refused"
    ),
    ("subject not a string", lambda k: sign(k.keys[0], claims(k, sub=42)), "subject"),
    (
        "signed by another key under a known kid", lambda k: sign(rsa_key(k.keys[0].kid, variant=1), claims(k)),
        "bad token signature"
    ),
    ("alg none", lambda k: unsigned({"alg": "none", "typ": "JWT", "kid": k.keys[0].kid}, claims(k)),
     "unsupported token algorithm"),
    ("alg None", lambda k: unsigned({"alg": "None", "kid": k.keys[0].kid}, claims(k)), "unsupported token algorithm"),
    ("no alg", lambda k: unsigned({"kid": k.keys[0].kid}, claims(k)), "unsupported token algorithm"),
    ("HS256 keyed with the public key", lambda k: hs256_with_public_key(k, claims(k)), "unsupported token algorithm"),
    ("RS512 with the right key", lambda k: unsigned({"alg": "RS512", "kid": k.keys[0].kid}, claims(k), b"x" * 256),
     "unsupported token algorithm"),
    ("jku header", lambda k: sign(k.keys[0], claims(k), jku="http://127.0.0.1:1/jwks.json"), "outside the issuer"),
    ("no kid", lambda k: unsigned({"alg": "RS256"}, claims(k), b"x" * 256), "no key id"),
    ("garbage", lambda k: "not-a-token", "malformed token"),
    ("bad header", lambda k: "e30x.e30.e30", "malformed token"),
    ("empty", lambda k: "", "no token"),
    ("huge", lambda k: "a." * 10_000 + "b", "token too large"),
]


@pytest.mark.parametrize(("case", "make", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refused(verifier: KindeTokenVerifier, kinde: FakeKinde, case: str, make: Any, reason: str,
                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = make(kinde)
    with pytest.raises(InvalidToken, match=reason) as refused:
        await verifier.verify(token)
    assert token not in str(refused.value) or not token
    assert not token or token not in caplog.text
    # The same claims, properly signed, would pass: the refusal is about what the case changed.
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde)))


@pytest.mark.parametrize("make", [
    lambda k: unsigned({"alg": "none", "kid": "kinde-1"}, claims(k)),
    lambda k: hs256_with_public_key(k, claims(k)),
])
async def test_wrong_algorithms_are_refused_before_any_key_lookup(verifier: KindeTokenVerifier, kinde: FakeKinde,
                                                                  make: Any) -> None:
    with pytest.raises(InvalidToken, match="unsupported token algorithm"):
        await verifier.verify(make(kinde))
    assert kinde.jwks_requests == 0


async def test_an_unknown_kid_is_refused_after_one_refetch(verifier: KindeTokenVerifier, kinde: FakeKinde) -> None:
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde)))
    assert kinde.jwks_requests == 1
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(sign(rsa_key("not-published"), claims(kinde)))
    assert kinde.jwks_requests == 1  # refetch not yet allowed (fetched just now)


async def test_a_rotated_in_key_is_accepted_after_one_refetch(verifier: KindeTokenVerifier, kinde: FakeKinde,
                                                              clock: ManualClock) -> None:
    assert await verifier.verify(sign(kinde.keys[0], claims(kinde)))
    new_key = rsa_key("kinde-2")
    kinde.keys.append(new_key)
    clock.advance(timedelta(seconds=61))
    assert await verifier.verify(sign(new_key, claims(kinde, sub="kp_bob"))) == Identity(
        "kinde:kp_bob", "alice@example.test"
    )
    assert kinde.jwks_requests == 2
    # The old key retires: tokens signed with it stop working once the set is refetched.
    kinde.keys.pop(0)
    clock.advance(timedelta(seconds=61))
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(sign(rsa_key("kinde-3"), claims(kinde)))
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(sign(rsa_key("kinde-1", variant=2), claims(kinde)))


async def test_a_flood_of_bogus_kids_fetches_at_most_once_per_interval(verifier: KindeTokenVerifier,
                                                                        kinde: FakeKinde, clock: ManualClock) -> None:
    bogus = [sign(rsa_key(f"bogus-{i}"), claims(kinde)) for i in range(3)]
    results = await asyncio.gather(*(verifier.verify(bogus[i % 3]) for i in range(30)), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert kinde.jwks_requests == 1  # the first use fetched once; everyone waited for it
    for token in bogus * 5:
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
    assert kinde.jwks_requests == 1
    clock.advance(timedelta(seconds=59))
    with pytest.raises(InvalidToken):
        await verifier.verify(bogus[0])
    assert kinde.jwks_requests == 1
    clock.advance(timedelta(seconds=1))
    for token in bogus:
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
    assert kinde.jwks_requests == 2


async def test_kinde_unreachable_refuses_the_token(kinde: FakeKinde, clock: ManualClock) -> None:
    kinde.jwks_status = 503
    async with httpx.AsyncClient(verify=TLS) as http:
        verifier = KindeTokenVerifier(kinde.issuer, AUDIENCE, clock, http)
        with pytest.raises(SigningKeysUnavailable):
            await verifier.verify(sign(kinde.keys[0], claims(kinde)))
        # Once it answers again (and the interval passed), verification works.
        kinde.jwks_status = 200
        clock.advance(timedelta(seconds=61))
        assert await verifier.verify(sign(kinde.keys[0], claims(kinde)))


async def test_published_keys_that_are_not_rs256_signing_keys_are_ignored(kinde: FakeKinde,
                                                                          clock: ManualClock) -> None:
    enc_key = rsa_key("for-encryption")
    kinde.keys.append(type(enc_key).import_key({**enc_key.as_dict(private=False), "use": "enc"}))
    async with httpx.AsyncClient(verify=TLS) as http:
        verifier = KindeTokenVerifier(kinde.issuer, AUDIENCE, clock, http)
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await verifier.verify(sign(rsa_key("for-encryption"), claims(kinde)))


def test_issuer_from_domain() -> None:
    assert kinde_issuer("sniper.kinde.com") == "https://sniper.kinde.com"
    assert kinde_issuer("https://sniper.kinde.com/") == "https://sniper.kinde.com"
