"""The multi-user HTTP API (Litestar): `create_app(container)`; `sniper serve` runs it."""

from entrypoints.http.app import create_app

__all__ = ["create_app"]
