"""DATABASE_URL as managed Postgres services hand it out (postgres://, postgresql://, libpq's
sslmode= and sslrootcert=), and every failure to open the store as one line: the variable, the
host and database, the cause; never the password; exit 2; nothing written.

The command-line claims run the real `sniper` as a subprocess, in an empty working directory that
must still be empty afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from adapters.eventstore.database import DatabaseUrlError, StoreUnavailable, ssl_argument, store_address
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine, open_engine
from application.errors import ConfigurationError
from entrypoints.config import ENV_VARS, SECRET_VARS, load_settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "h3-Pa55word-never-shown"
# Generous: the test machine is small and shared; a refusal itself takes well under a second.
COMMAND_TIMEOUT = 300


# --- the command line --------------------------------------------------------------------------

def sniper(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`sniper ARGS` with only the given settings (no DATABASE_URL, PGSSLMODE... of the caller)."""
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], cwd=cwd, env=_env(cwd, env),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def _env(cwd: Path, settings: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT), **settings}


def assert_refused_in_one_line(done: subprocess.CompletedProcess[str], *mentions: str) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert done.returncode == 2, output
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sniper: DATABASE_URL"), lines[0]
    for mention in mentions:
        assert mention in lines[0], lines[0]
    assert PASSWORD not in output
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The commands' working directory: nothing may be written into it (no sniper.db, no key file)."""
    path = tmp_path / "cwd"
    path.mkdir()
    yield path
    assert sorted(p.name for p in path.iterdir()) == []


def _with_password(postgres_url: str, **parts: str) -> str:
    """The test server's URL as libpq spells it (postgresql://), with a password and `parts` changed."""
    url = make_url(postgres_url).set(drivername="postgresql", password=PASSWORD, **parts)
    return url.render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_does_not_exist(postgres_url: str, workdir: Path) -> None:
    name = f"h3_missing_{secrets.token_hex(4)}"
    url = _with_password(postgres_url, database=name)
    host = make_url(postgres_url).host or ""
    assert_refused_in_one_line(sniper(workdir, "migrate", DATABASE_URL=url), host, f'database "{name}" does not exist')


def test_a_role_that_does_not_exist(postgres_url: str, workdir: Path) -> None:
    role = f"h3_nobody_{secrets.token_hex(4)}"
    url = _with_password(postgres_url, username=role)
    assert_refused_in_one_line(sniper(workdir, "migrate", DATABASE_URL=url), f'role "{role}" does not exist')


def test_no_server_at_the_port(workdir: Path) -> None:
    port = _free_port()
    url = f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/h3_x"
    assert_refused_in_one_line(sniper(workdir, "demo", DATABASE_URL=url), f"127.0.0.1:{port}", "connection refused")


def test_sslmode_require_on_a_server_without_tls(postgres_url: str, workdir: Path) -> None:
    if _server_offers_tls(postgres_url):
        pytest.skip("the test Postgres offers TLS: this test needs one that does not")
    url = _with_password(postgres_url, query={"sslmode": "require"})
    line = assert_refused_in_one_line(sniper(workdir, "migrate", DATABASE_URL=url), "refused TLS")
    assert make_url(postgres_url).database in line


def test_an_unknown_sslmode(workdir: Path) -> None:
    url = f"postgresql+asyncpg://postgres:{PASSWORD}@db.example.com/h3_x?sslmode=required"  # refused before any connect
    line = assert_refused_in_one_line(sniper(workdir, "migrate", DATABASE_URL=url), "sslmode=required")
    assert "verify-full" in line  # says what would do


def test_a_missing_sqlite_directory_is_not_created(tmp_path: Path, workdir: Path) -> None:
    missing = tmp_path / "missing" / "dir"
    url = f"sqlite+aiosqlite:///{missing / 'x.db'}"
    assert_refused_in_one_line(sniper(workdir, "demo", DATABASE_URL=url), str(missing), "does not exist")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", [
    ["demo"], ["history", "--all"], ["snipe", "NEWUSDT", "--quote-amount", "10"], ["reconcile"],
    ["halt", "--reason", "test"], ["keys", "rotate"], ["serve", "--port", "1"], ["worker", "--for", "5"],
])
def test_every_command_that_opens_the_store_refuses_in_one_line(
    command: list[str], postgres_url: str, workdir: Path
) -> None:
    name = f"h3_missing_{secrets.token_hex(4)}"
    settings = {
        # as SQLAlchemy spells it: this failed with a 179-line traceback before
        "DATABASE_URL": make_url(postgres_url).set(password=PASSWORD, database=name).render_as_string(
            hide_password=False
        ),
        "ENCRYPTION_KEY": "1:" + "A" * 43 + "=",  # `keys rotate` needs one; nothing is sealed
        # At the default log level: serve and worker log their start only once the store answered.
    }
    assert_refused_in_one_line(sniper(workdir, *command, **settings), f'database "{name}" does not exist')


@pytest.fixture
def h3_database(postgres_url: str) -> Iterator[str]:
    """A new empty database on the test server (dropped afterwards), as libpq spells its URL."""
    import asyncpg

    name = f"h3_urls_{secrets.token_hex(4)}"
    admin = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def aside(sql: str) -> None:  # its own loop, whatever the test's is
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, run(sql)).result(timeout=60)

    aside(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        aside(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_libpq_url_with_sslmode_disable_migrates_and_runs_the_demo(h3_database: str, workdir: Path) -> None:
    url = f"{h3_database}?sslmode=disable"
    migrated = sniper(workdir, "migrate", DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    assert "schema migrated from nothing to" in migrated.stdout
    demo = sniper(workdir, "demo", DATABASE_URL=url, ENCRYPTION_KEY="1:" + "A" * 43 + "=")
    assert demo.returncode == 0, demo.stderr
    assert "Final P&L" in demo.stdout
    events = asyncio.run(_last_position(url))
    assert events > 0


async def _last_position(url: str) -> int:
    engine = make_engine(url)
    try:
        return await SqlEventStore(engine).last_position()
    finally:
        await engine.dispose()


def _server_offers_tls(postgres_url: str) -> bool:
    import asyncpg

    context = ssl_argument("require", None)
    url = make_url(postgres_url)

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                         database=url.database, ssl=context, timeout=30)
        except ConnectionError:
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


# --- one translation for every engine ---------------------------------------------------------

async def test_every_connection_of_the_engine_gets_the_translated_arguments(h3_database: str) -> None:
    """The projector works on asyncpg's own connection (adapters/projections/sql.py): it is the
    engine's, so it carries what the URL asked for as well as the store's own settings."""
    engine = make_engine(f"{h3_database}?sslmode=disable&application_name=h3-app&connect_timeout=20")
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert await raw.fetchval("SELECT current_setting('application_name')") == "h3-app"
            assert await raw.fetchval("SELECT current_setting('plan_cache_mode')") == "force_custom_plan"
            assert await raw.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False
    finally:
        await engine.dispose()


async def test_a_password_the_server_echoes_is_masked(postgres_url: str) -> None:
    role = f"h3_{secrets.token_hex(6)}"  # the server names the role it refused: here also the password
    url = make_url(postgres_url).set(username=role, password=role).render_as_string(hide_password=False)
    with pytest.raises(StoreUnavailable) as refused:
        await open_engine(url)
    assert refused.value.cause == 'role "***" does not exist'  # the user name is shown where it says where


@pytest.mark.parametrize(("failure", "says"), [
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS certificate was not accepted"),
    (socket.gaierror(-2, "Name or service not known"), "the host db.example.com was not found"),
    (TimeoutError(), "no answer from db.example.com:6543 in time"),
    (ConnectionRefusedError(111, "Connect call failed"), "connection refused at db.example.com:6543"),
])
def test_network_failures_are_said_plainly(failure: Exception, says: str) -> None:
    from adapters.eventstore.database import store_unavailable

    address = store_address(f"postgresql://app:{PASSWORD}@db.example.com:6543/app?sslmode=verify-full")
    refused = store_unavailable(address, failure)
    assert str(refused) == f"cannot open the store at app@db.example.com:6543/app: {refused.cause}"
    assert says in refused.cause


# --- sslmode, as asyncpg takes it -----------------------------------------------------------------

@pytest.fixture(scope="module")
def root_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate of our own (PEM), as sslrootcert= names one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h3 test root")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2120, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("certs") / "root.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _roots(context: ssl.SSLContext) -> list[str]:
    return [dict(part[0] for part in cert["subject"])["commonName"] for cert in context.get_ca_certs()]


def test_no_sslmode_passes_nothing() -> None:
    assert ssl_argument(None, None) is None
    assert "ssl" not in store_address("postgresql://u@h/db").connect_args


def test_disable_allow_and_prefer() -> None:
    assert ssl_argument("disable", None) is False
    # asyncpg's own modes: it tries one way, then the other (a context would mean "require")
    assert ssl_argument("allow", None) == "allow"
    assert ssl_argument("prefer", None) == "prefer"


def test_require_encrypts_without_checking_the_certificate() -> None:
    context = ssl_argument("require", None)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and context.check_hostname is False


def test_require_with_a_root_certificate_checks_it_as_verify_ca(root_cert: Path) -> None:
    context = ssl_argument("require", str(root_cert))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False
    assert _roots(context) == ["h3 test root"]


def test_verify_ca_checks_the_chain_not_the_host(root_cert: Path) -> None:
    context = ssl_argument("verify-ca", str(root_cert))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False
    assert _roots(context) == ["h3 test root"]


def test_verify_full_checks_the_chain_and_the_host(root_cert: Path) -> None:
    context = ssl_argument("verify-full", str(root_cert))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    assert _roots(context) == ["h3 test root"]


@pytest.mark.parametrize("root", [None, "system"])
def test_verify_without_a_root_file_uses_the_system_roots(root: str | None) -> None:
    context = ssl_argument("verify-full", root)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()


def test_system_roots_mean_verify_full_as_in_libpq() -> None:
    context = store_address("postgresql://u@h/db?sslrootcert=system").connect_args["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    with pytest.raises(DatabaseUrlError, match="system roots need sslmode=verify-full"):
        store_address("postgresql://u@h/db?sslmode=require&sslrootcert=system")


def test_a_root_certificate_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUrlError, match="not a readable file"):
        ssl_argument("verify-ca", str(tmp_path / "absent.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(DatabaseUrlError, match="no usable certificate"):
        ssl_argument("verify-ca", str(junk))


# --- the URL ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg", "POSTGRES"])
def test_every_postgres_scheme_means_asyncpg(scheme: str) -> None:
    address = store_address(f"{scheme}://u:pw@db.example.com:6543/app?sslmode=require")
    assert address.url.drivername == "postgresql+asyncpg"
    assert dict(address.url.query) == {}  # libpq's names never reach asyncpg.connect
    assert isinstance(address.connect_args["ssl"], ssl.SSLContext)
    assert address.location == "u@db.example.com:6543/app"


def test_libpq_parameters_become_connect_arguments() -> None:
    address = store_address("postgresql://u@h/db?connect_timeout=7&application_name=me&channel_binding=prefer"
                            "&prepared_statement_cache_size=0")
    assert address.connect_args == {"timeout": 7.0, "server_settings": {"application_name": "me"}}
    assert dict(address.url.query) == {"prepared_statement_cache_size": "0"}  # SQLAlchemy's own


@pytest.mark.parametrize(("query", "says"), [
    ("sslmode=bogus", "sslmode=bogus; it must be one of disable, allow, prefer, require, verify-ca, verify-full"),
    ("sslmode=require&ssl=disable", "keep one"),
    ("sslmode=require&sslmode=disable", "more than once"),
    ("channel_binding=require", "asyncpg cannot do"),
    ("connect_timeout=soon", "connect_timeout=soon"),
    ("sslcert=/c.pem", "sslcert="),
])
def test_what_cannot_be_honoured_is_refused_by_name(query: str, says: str) -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        store_address(f"postgresql://u:{PASSWORD}@h/db?{query}")
    assert says in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_a_url_that_does_not_parse_is_not_echoed() -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        store_address(f"postgresql://u:{PASSWORD}@h:port/db")
    assert PASSWORD not in str(refused.value)


# --- settings ---------------------------------------------------------------------------------------

def test_settings_keep_the_url_with_its_driver_named() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u:pw@h:5432/db?sslmode=require"})
    assert settings.store_url == "postgresql+asyncpg://u:pw@h:5432/db?sslmode=require"


def test_a_bad_sslmode_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"DATABASE_URL": f"postgresql://u:{PASSWORD}@h/db?sslmode=bogus"})
    assert str(refused.value).startswith("DATABASE_URL has sslmode=bogus")
    assert PASSWORD not in str(refused.value)


def test_neon_database_url_stands_in_for_an_unset_database_url() -> None:
    neon = "postgresql://u:pw@ep-x.neon.tech/neondb?sslmode=require"
    assert load_settings({"NEON_DATABASE_URL": neon}).store_url == "postgresql+asyncpg" + neon[len("postgresql"):]
    assert load_settings({"NEON_DATABASE_URL": neon, "DATABASE_URL": ""}).store_url.endswith(
        "/neondb?sslmode=require"
    )
    same = {"NEON_DATABASE_URL": neon, "DATABASE_URL": "postgres" + neon[len("postgresql"):]}
    assert load_settings(same).store_url.startswith("postgresql+asyncpg://")
    with pytest.raises(ConfigurationError, match="sslmode=nope") as refused:
        load_settings({"NEON_DATABASE_URL": neon.replace("require", "nope")})
    assert str(refused.value).startswith("NEON_DATABASE_URL ")


def test_database_url_and_its_alias_differing_is_refused_without_echoing_either() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"DATABASE_URL": f"postgresql://u:{PASSWORD}@a/db", "NEON_DATABASE_URL": f"postgresql://u:{PASSWORD}@b/db"})
    assert "DATABASE_URL and NEON_DATABASE_URL" in str(refused.value) and PASSWORD not in str(refused.value)


def test_kinde_issuer_url_stands_in_for_an_unset_kinde_domain() -> None:
    env = {"KINDE_ISSUER_URL": "https://sniper.kinde.com/", "KINDE_AUDIENCE": "api"}
    assert load_settings(env).kinde_issuer == "https://sniper.kinde.com"
    assert load_settings(env | {"KINDE_DOMAIN": "sniper.kinde.com"}).kinde_issuer == "https://sniper.kinde.com"
    with pytest.raises(ConfigurationError, match="KINDE_DOMAIN and KINDE_ISSUER_URL"):
        load_settings(env | {"KINDE_DOMAIN": "other.kinde.com"})
    with pytest.raises(ConfigurationError, match="KINDE_ISSUER_URL must be the issuer's URL"):
        load_settings({"KINDE_ISSUER_URL": "sniper.kinde.com", "KINDE_AUDIENCE": "api"})


def test_the_aliases_are_listed_and_the_database_one_is_secret() -> None:
    names = {v.name for v in ENV_VARS}
    assert {"NEON_DATABASE_URL", "KINDE_ISSUER_URL"} <= names
    assert "NEON_DATABASE_URL" in SECRET_VARS
