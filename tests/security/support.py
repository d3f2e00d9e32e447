"""Shared by the security tests: sample credentials and every form a leak could take."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from application.credentials import ApiCredentials

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

API_KEY = "mx0vglQ7TestApiKey2xYz9"
SECRET_KEY = "9f8e7d6cTestSecretKey0a1b2c3d4e5f"
CREDENTIALS = ApiCredentials(API_KEY, SECRET_KEY)


def leak_forms(value: str) -> list[bytes]:
    """The value as plain text, hex, and base64 (both alphabets, all three alignments, with
    the edge characters that depend on neighbours dropped)."""
    raw = value.encode()
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for shift in range(3):
        chunk = raw[shift:]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(chunk).rstrip(b"=")
            forms.append(text[:-2])
    return forms


def find_leaks(dump: bytes, *values: str) -> list[str]:
    """Which of the values show up in the dump, in any form; empty when none does."""
    return [f"{value[:3]}... as {form[:12]!r}" for value in values for form in leak_forms(value) if form in dump]
