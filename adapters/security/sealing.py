"""AES-256-GCM sealing of small secrets under a versioned key ring.

Keys. A key ring maps a key version (a positive whole number) to a 32-byte key; one version is
current and seals everything new, the others only open what they sealed before. In the
environment (read by entrypoints/config.py, never here):

    ENCRYPTION_KEY=3:<base64 of 32 bytes>          the current key and its version
    ENCRYPTION_KEY=<base64 of 32 bytes>            the same, version 1
    ENCRYPTION_OLD_KEYS=2:<base64>,1:<base64>      older keys still needed to open old rows

Standard or URL-safe base64, padding optional. Make a key with
`python -c "import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`.
To rotate: move the current key into ENCRYPTION_OLD_KEYS, set a new ENCRYPTION_KEY with a
higher version, run `sniper keys rotate`; afterwards the old key may be dropped.

Sealed form. `nonce (12 random bytes) || ciphertext || tag (16 bytes)`, stored with the key
version beside it. The associated data binds the ciphertext to its owner, its field and the
key version (`mexc-sniper/v1|<field>|<version>|<owner>`): a sealed value copied to another
user's row, to the other field, or relabelled with another version does not open.

Never logs, and no error message carries a key or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.errors import ApplicationError, ConfigurationError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_AD_PREFIX = "mexc-sniper/v1"


class SealingError(ApplicationError):
    """A sealed value cannot be opened: wrong key, tampered data, or sealed for another owner."""


class UnknownKeyVersion(SealingError):
    """The value was sealed under a key version the ring does not hold."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value and the version of the key that sealed it."""

    key_version: int
    blob: bytes = field(repr=False)

    def text(self) -> str:
        """The blob as URL-safe base64, for a TEXT column."""
        return base64.urlsafe_b64encode(self.blob).decode("ascii")

    @classmethod
    def from_text(cls, key_version: int, text: str) -> Sealed:
        try:
            return cls(key_version, base64.urlsafe_b64decode(text.encode("ascii")))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise SealingError("sealed value is not valid base64 (tampered?)") from None


class KeyRing:
    """Versioned AES-256-GCM keys: the current one seals, any one opens what it sealed."""

    __slots__ = ("_current", "_keys", "_key_bytes")

    def __init__(self, current_version: int, keys: Mapping[int, bytes]) -> None:
        if current_version not in keys:
            raise ConfigurationError(f"the key ring holds no key for its current version {current_version}")
        for version, key in keys.items():
            if not isinstance(version, int) or version < 1:
                raise ConfigurationError(f"key versions are whole numbers from 1, got {version!r}")
            if len(key) != KEY_BYTES:
                raise ConfigurationError(f"key version {version} must be {KEY_BYTES} bytes, got {len(key)}")
        self._current = current_version
        self._key_bytes = {v: bytes(k) for v, k in keys.items()}  # slots: no __dict__ to print by accident
        self._keys = {v: AESGCM(k) for v, k in self._key_bytes.items()}

    def __repr__(self) -> str:  # never the keys
        return f"KeyRing(current={self._current}, versions={sorted(self._keys)})"

    @property
    def current_version(self) -> int:
        return self._current

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self._keys)

    @classmethod
    def generate(cls, version: int = 1) -> KeyRing:
        """A ring with one fresh random key (tests, and the development key file)."""
        return cls(version, {version: os.urandom(KEY_BYTES)})

    @classmethod
    def parse(cls, current: str, old: str = "", current_name: str = "ENCRYPTION_KEY",
              old_name: str = "ENCRYPTION_OLD_KEYS") -> KeyRing:
        """The ring from the two settings (see the module docstring). Errors name the setting,
        never the key."""
        version, key = parse_key(current, current_name)
        keys = {version: key}
        for item in (part.strip() for part in old.split(",")):
            if not item:
                continue
            if ":" not in item:
                raise ConfigurationError(f"{old_name} entries must be VERSION:BASE64KEY, comma separated")
            old_version, old_key = parse_key(item, old_name)
            if old_version in keys:
                raise ConfigurationError(f"{old_name} repeats key version {old_version} (or reuses the current one)")
            keys[old_version] = old_key
        return cls(version, keys)

    def with_current(self, other: KeyRing) -> KeyRing:
        """This ring's keys plus `other`'s, with `other`'s current key as the current one."""
        merged = dict(self._key_bytes)
        merged.update(other._key_bytes)
        return KeyRing(other.current_version, merged)

    def seal(self, plaintext: str, owner: str, field_name: str) -> Sealed:
        version = self._current
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._keys[version].encrypt(nonce, plaintext.encode("utf-8"), _ad(owner, field_name, version))
        return Sealed(version, blob)

    def open(self, sealed: Sealed, owner: str, field_name: str) -> str:
        aead = self._keys.get(sealed.key_version)
        if aead is None:
            raise UnknownKeyVersion(
                f"{field_name} of {owner} is sealed under key version {sealed.key_version}, which is not configured "
                f"(add it to ENCRYPTION_OLD_KEYS)"
            )
        if len(sealed.blob) < NONCE_BYTES + TAG_BYTES:
            raise SealingError(f"{field_name} of {owner} is too short to be a sealed value (tampered?)")
        nonce, body = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            plain = aead.decrypt(nonce, body, _ad(owner, field_name, sealed.key_version))
        except InvalidTag:
            raise SealingError(
                f"{field_name} of {owner} does not open under key version {sealed.key_version}: "
                "wrong key, tampered data, or sealed for another user"
            ) from None
        return plain.decode("utf-8")


def _ad(owner: str, field_name: str, version: int) -> bytes:
    return f"{_AD_PREFIX}|{field_name}|{version}|{owner}".encode()


def parse_key(value: str, name: str = "ENCRYPTION_KEY") -> tuple[int, bytes]:
    """`VERSION:BASE64` or `BASE64` (version 1) -> (version, 32 key bytes)."""
    text = value.strip()
    version = 1
    if ":" in text:
        head, text = text.split(":", 1)
        if not head.strip().isdigit() or int(head) < 1:
            raise ConfigurationError(f"{name} key version must be a whole number from 1 (VERSION:BASE64KEY)")
        version = int(head)
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{name} must be base64 of {KEY_BYTES} random bytes (VERSION:BASE64KEY)") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(f"{name} must decode to {KEY_BYTES} bytes (AES-256), got {len(key)}")
    return version, key


def encode_key(key: bytes, version: int | None = None) -> str:
    """The settings form of a key: URL-safe base64, prefixed with `VERSION:` when given."""
    text = base64.urlsafe_b64encode(key).decode("ascii")
    return text if version is None else f"{version}:{text}"
