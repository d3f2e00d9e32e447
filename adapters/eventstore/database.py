"""Where the event store lives: a database URL as people are handed it, turned into what
SQLAlchemy and asyncpg take, and every reason the store cannot be opened said in one line.

Managed Postgres services (Neon, Supabase, RDS) hand out libpq URLs: `postgresql://` or
`postgres://`, with libpq's own parameters such as `sslmode=require`. SQLAlchemy passes query
parameters to `asyncpg.connect` as keywords, and asyncpg has no `sslmode` keyword: it takes TLS as
one `ssl` argument. `store_address` is the one translation; `make_engine` uses it, so every engine
of the store (event store, the projector on asyncpg's own connection, migrations, the HTTP app,
the worker, the benchmarks) connects with the same arguments.

sslmode, as libpq defines it (https://www.postgresql.org/docs/current/libpq-ssl.html):

* `disable`: no TLS. `allow`, `prefer`: asyncpg's own modes of the same names (try one way, fall
  back to the other; the certificate is not checked).
* `require`: TLS or no connection; encrypted, the certificate not checked. With an explicit
  `sslrootcert` it is checked as for `verify-ca`, as libpq does.
* `verify-ca`: the server's certificate must chain to `sslrootcert`; `verify-full`: and name the
  host. Without `sslrootcert` (or with `sslrootcert=system`, libpq 16's spelling) the system's
  trusted roots are used: libpq would read `~/.postgresql/root.crt`, a file nobody has on a server.
  As in libpq 16, `sslrootcert=system` means `verify-full` and refuses a weaker sslmode.
* no sslmode: nothing is passed, and asyncpg decides as libpq does (PGSSLMODE, else `prefer`).
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from application.errors import ConfigurationError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SYSTEM_ROOT_CERTS = "system"
_ASYNCPG = "postgresql+asyncpg"
_AIOSQLITE = "sqlite+aiosqlite"
# libpq's names, all meaning Postgres through asyncpg here.
_POSTGRES_SCHEMES = {"postgresql+asyncpg": _ASYNCPG, "postgresql": _ASYNCPG, "postgres": _ASYNCPG}
# Parameters taken out of the URL and translated; anything else would reach asyncpg.connect as
# an unknown keyword, so it is refused up front.
_TRANSLATED = ("sslmode", "ssl", "sslrootcert", "connect_timeout", "application_name", "channel_binding")
_PASSED_ON = ("prepared_statement_cache_size",)  # SQLAlchemy's asyncpg dialect reads it itself


class DatabaseUrlError(ValueError):
    """A database URL this program cannot use. The message says which part, never the password."""


class StoreUnavailable(ConfigurationError):
    """The store's database cannot be opened: where (never the password) and why, in one line."""

    def __init__(self, location: str, cause: str) -> None:
        super().__init__(f"cannot open the store at {location}: {cause}")
        self.location = location
        self.cause = cause


@dataclass(frozen=True, slots=True)
class StoreAddress:
    """A database URL ready for SQLAlchemy: the driver named, libpq's parameters translated into
    asyncpg's connect arguments (`ssl`, `timeout`, `server_settings`)."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """user@host:port/database, or the SQLite file: for messages, never with the password."""
        if self.url.get_backend_name() == "sqlite":
            return f"SQLite file {self.url.database or ':memory:'}"
        user = f"{self.url.username}@" if self.url.username else ""
        host = self.url.host or "the local socket"
        port = f":{self.url.port}" if self.url.port else ""
        return f"{user}{host}{port}/{self.url.database or ''}"


def canonical_database_url(raw: str) -> str:
    """`raw` with its driver named (postgres:// and postgresql:// become postgresql+asyncpg://),
    libpq's parameters kept; raises DatabaseUrlError for anything `store_address` would refuse."""
    store_address(raw)
    return _with_driver(raw)


def store_address(raw: str) -> StoreAddress:
    """The URL SQLAlchemy gets and asyncpg's connect arguments, for a database URL as handed out."""
    try:
        url = make_url(_with_driver(raw))
        url.port  # noqa: B018 - a port that is not a number fails here, not at the first connect
    except (ArgumentError, ValueError):
        raise DatabaseUrlError("is not a database URL (scheme://user:password@host:port/database)") from None
    if url.drivername == _AIOSQLITE:
        return StoreAddress(url)
    if url.drivername != _ASYNCPG:
        raise DatabaseUrlError(f"has scheme {url.drivername}://; use postgresql://, postgres:// or sqlite+aiosqlite:///FILE")
    return _postgres(url)


def _with_driver(raw: str) -> str:
    scheme, sep, rest = raw.strip().partition("://")
    return f"{_POSTGRES_SCHEMES.get(scheme.lower(), scheme)}{sep}{rest}"


def _postgres(url: URL) -> StoreAddress:
    query: dict[str, str] = {}
    for name, value in url.query.items():
        if not isinstance(value, str):
            raise DatabaseUrlError(f"gives {name}= more than once")
        query[name] = value
    unknown = sorted(set(query) - set(_TRANSLATED) - set(_PASSED_ON))
    if unknown:
        known = ", ".join(_TRANSLATED + _PASSED_ON)
        raise DatabaseUrlError(f"has parameter {unknown[0]}=, which this program does not understand (known: {known})")
    mode = query.pop("sslmode", None)
    alias = query.pop("ssl", None)  # SQLAlchemy's documented spelling for asyncpg
    if mode is not None and alias is not None and mode != alias:
        raise DatabaseUrlError(f"gives sslmode={mode} and ssl={alias}; keep one")
    mode = mode if mode is not None else alias
    if mode is not None and mode not in SSL_MODES:
        raise DatabaseUrlError(f"has sslmode={mode}; it must be one of {', '.join(SSL_MODES)}")
    root_cert = query.pop("sslrootcert", None)
    if root_cert == SYSTEM_ROOT_CERTS:  # as libpq 16: the public roots only make sense with the host checked
        if mode not in (None, "verify-full"):
            raise DatabaseUrlError(f"has sslrootcert=system with sslmode={mode}; system roots need sslmode=verify-full")
        mode = "verify-full"
    args: dict[str, Any] = {}
    tls = ssl_argument(mode, root_cert)
    if tls is not None:
        args["ssl"] = tls
    timeout = query.pop("connect_timeout", None)
    if timeout is not None:
        args["timeout"] = _seconds(timeout)
    application_name = query.pop("application_name", None)
    if application_name is not None:
        args["server_settings"] = {"application_name": application_name}
    binding = query.pop("channel_binding", None)
    if binding is not None and binding not in ("disable", "prefer", "require"):
        raise DatabaseUrlError(f"has channel_binding={binding}; it must be disable, prefer or require")
    if binding == "require":
        # Dropping it would quietly connect with less than the URL demands.
        raise DatabaseUrlError("has channel_binding=require, which asyncpg cannot do; remove it "
                               "(sslmode=verify-full authenticates the server instead)")
    return StoreAddress(url.set(query=query), args)


def _seconds(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not (0 < seconds <= 3600):
        raise DatabaseUrlError(f"has connect_timeout={raw}; it must be a number of seconds from 1 to 3600")
    return seconds


def ssl_argument(mode: str | None, root_cert: str | None) -> bool | str | ssl.SSLContext | None:
    """asyncpg's `ssl` connect argument for libpq's `sslmode` and `sslrootcert` (module docstring)."""
    if mode is None:
        return None
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode  # asyncpg implements the fallback; a context alone would mean "require"
    if mode == "require" and root_cert is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    if root_cert is None or root_cert == SYSTEM_ROOT_CERTS:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return context
    if not Path(root_cert).is_file():
        raise DatabaseUrlError(f"has sslrootcert={root_cert}, which is not a readable file")
    try:
        context.load_verify_locations(cafile=root_cert)
    except (ssl.SSLError, OSError) as exc:
        raise DatabaseUrlError(f"has sslrootcert={root_cert}, which holds no usable certificate ({exc})") from None
    return context


# --- why the store cannot be opened ----------------------------------------------------------------

def check_sqlite_location(address: StoreAddress, path: Path | None) -> None:
    """SQLite makes the database file on first connect, never its directory: a missing or
    unwritable directory is refused here, before anything is created."""
    if path is None:
        return
    if path.is_dir():
        raise StoreUnavailable(address.location, f"{path} is a directory, not a database file")
    if path.exists():
        return
    parent = path.parent
    if not parent.is_dir():
        raise StoreUnavailable(address.location, f"the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreUnavailable(address.location, f"the directory {parent} is not writable")


def open_failures() -> tuple[type[BaseException], ...]:
    """What connecting to the store raises when the database cannot be opened (not a bug)."""
    import asyncpg

    return (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def store_unavailable(address: StoreAddress, exc: BaseException) -> StoreUnavailable:
    """One line for a failed connect: the database's own words where it gave some."""
    return StoreUnavailable(address.location, _masked(_cause(address, exc), address.url.password))


def _cause(address: StoreAddress, exc: BaseException) -> str:
    url = address.url
    where = f"{url.host or 'the local socket'}:{url.port or 5432}"
    if isinstance(exc, DBAPIError):
        exc = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else exc  # asyncpg's own, under the wrapping
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was not accepted ({getattr(exc, 'verify_message', None) or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionError) and "rejected SSL upgrade" in str(exc):
        return f"the server at {where} refused TLS (it offers no encrypted connections; the URL asks for them)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused at {where} (no server listening there)"
    if isinstance(exc, socket.gaierror):
        return f"the host {url.host} was not found"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if url.get_backend_name() == "sqlite" and "unable to open database file" in str(exc):
        return "SQLite cannot open or create the file there"
    return _first_line(str(exc)) or type(exc).__name__


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _masked(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
