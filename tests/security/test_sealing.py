"""AES-256-GCM sealing: round trip, and refusal of tampering, a wrong key, another owner."""

from __future__ import annotations

import base64
import os
from dataclasses import replace

import pytest

from adapters.security.sealing import (
    KeyRing,
    Sealed,
    SealingError,
    UnknownKeyVersion,
    encode_key,
    parse_key,
)
from application.errors import ConfigurationError

SECRET = "s3cr3t-Value-0123456789abcdef"


def test_round_trip_and_a_fresh_nonce_every_time() -> None:
    ring = KeyRing.generate(version=2)
    first, second = ring.seal(SECRET, "alice", "secret_key"), ring.seal(SECRET, "alice", "secret_key")
    assert first.key_version == 2
    assert first.blob != second.blob  # random 96-bit nonce per seal
    assert first.blob[:12] != second.blob[:12]
    assert len(first.blob) == 12 + len(SECRET) + 16
    assert SECRET.encode() not in first.blob
    assert ring.open(first, "alice", "secret_key") == SECRET
    assert ring.open(Sealed.from_text(2, first.text()), "alice", "secret_key") == SECRET


@pytest.mark.parametrize("position", [0, 12, 20, -1])
def test_a_flipped_bit_anywhere_is_refused(position: int) -> None:
    ring = KeyRing.generate()
    sealed = ring.seal(SECRET, "alice", "secret_key")
    blob = bytearray(sealed.blob)
    blob[position] ^= 0x01
    with pytest.raises(SealingError, match="does not open"):
        ring.open(replace(sealed, blob=bytes(blob)), "alice", "secret_key")


def test_a_truncated_value_is_refused() -> None:
    ring = KeyRing.generate()
    with pytest.raises(SealingError, match="too short"):
        ring.open(Sealed(1, b"short"), "alice", "secret_key")
    with pytest.raises(SealingError, match="base64"):
        Sealed.from_text(1, "not base64 ***")


def test_a_wrong_key_of_the_same_version_is_refused() -> None:
    sealed = KeyRing.generate().seal(SECRET, "alice", "secret_key")
    with pytest.raises(SealingError, match="wrong key"):
        KeyRing.generate().open(sealed, "alice", "secret_key")


def test_a_value_moved_to_another_user_or_field_or_version_is_refused() -> None:
    key = os.urandom(32)
    ring = KeyRing(1, {1: key, 2: key})  # same key under two versions: only the AD differs
    sealed = ring.seal(SECRET, "alice", "secret_key")
    with pytest.raises(SealingError):
        ring.open(sealed, "mallory", "secret_key")
    with pytest.raises(SealingError):
        ring.open(sealed, "alice", "api_key")
    with pytest.raises(SealingError):
        ring.open(replace(sealed, key_version=2), "alice", "secret_key")
    assert ring.open(sealed, "alice", "secret_key") == SECRET


def test_an_unknown_key_version_says_which_and_where_to_add_it() -> None:
    sealed = KeyRing.generate(version=1).seal(SECRET, "alice", "secret_key")
    with pytest.raises(UnknownKeyVersion, match="version 1.*ENCRYPTION_OLD_KEYS"):
        KeyRing.generate(version=2).open(sealed, "alice", "secret_key")


def test_errors_and_reprs_never_show_keys_or_plaintext() -> None:
    key = os.urandom(32)
    ring = KeyRing(1, {1: key})
    sealed = ring.seal(SECRET, "alice", "secret_key")
    for text in (repr(ring), str(ring), repr(sealed)):
        assert encode_key(key) not in text and base64.b64encode(key).decode() not in text
        assert sealed.text() not in text
    try:
        KeyRing.generate().open(sealed, "alice", "secret_key")
    except SealingError as exc:
        assert SECRET not in str(exc) and sealed.text() not in str(exc)


class TestParsing:
    def test_versioned_and_bare_keys_in_both_base64_alphabets(self) -> None:
        key = bytes(range(250, 256)) * 5 + b"\xfb\xff"  # bytes that differ in the two alphabets
        assert parse_key(encode_key(key, 3)) == (3, key)
        assert parse_key(base64.b64encode(key).decode()) == (1, key)
        assert parse_key(base64.urlsafe_b64encode(key).decode().rstrip("=")) == (1, key)

    def test_ring_with_old_keys(self) -> None:
        old1, old2, new = os.urandom(32), os.urandom(32), os.urandom(32)
        ring = KeyRing.parse(encode_key(new, 3), f"{encode_key(old2, 2)}, {encode_key(old1, 1)}")
        assert ring.current_version == 3 and ring.versions == {1, 2, 3}
        sealed_by_old = KeyRing(1, {1: old1}).seal(SECRET, "alice", "api_key")
        assert ring.open(sealed_by_old, "alice", "api_key") == SECRET
        assert ring.seal(SECRET, "alice", "api_key").key_version == 3

    @pytest.mark.parametrize(
        ("current", "old", "message"),
        [
            ("", "", "ENCRYPTION_KEY must decode to 32 bytes"),
            ("not*base64", "", "ENCRYPTION_KEY must be base64"),
            (encode_key(b"x" * 16), "", "32 bytes"),
            ("0:" + encode_key(b"x" * 32), "", "version must be a whole number"),
            ("v2:" + encode_key(b"x" * 32), "", "version must be a whole number"),
            (encode_key(b"x" * 32, 2), encode_key(b"y" * 32), "ENCRYPTION_OLD_KEYS entries must be VERSION:BASE64KEY"),
            (encode_key(b"x" * 32, 2), encode_key(b"y" * 32, 2), "repeats key version 2"),
        ],
    )
    def test_bad_settings_name_the_variable_never_the_key(self, current: str, old: str, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message) as err:
            KeyRing.parse(current, old)
        assert "eHh4" not in str(err.value) and "eXl5" not in str(err.value)  # base64 of xxx / yyy
