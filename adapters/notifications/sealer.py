"""Channel secrets sealed with the credentials' key ring (adapters/security/sealing.py)."""

from __future__ import annotations

from adapters.security.sealing import KeyRing, Sealed, SealingError


class KeyRingSealer:
    """SecretSealer: `v<key version>.<base64 of nonce, ciphertext and tag>`, bound to the user
    and the field (a value copied to another user or channel does not open)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def __repr__(self) -> str:
        return "KeyRingSealer()"

    def seal(self, plaintext: str, owner: str, field_name: str) -> str:
        sealed = self._ring.seal(plaintext, owner, field_name)
        return f"v{sealed.key_version}.{sealed.text()}"

    def open(self, sealed: str, owner: str, field_name: str) -> str:
        version, _, blob = sealed.partition(".")
        if not version.startswith("v") or not version[1:].isdigit() or not blob:
            raise SealingError("not a sealed value")
        return self._ring.open(Sealed.from_text(int(version[1:]), blob), owner, field_name)
