"""Gateway auth against a real PostgreSQL: `trademesh keys` run as a process, GatewayAuth
checking keys and Studio sessions from memory, revocation reaching a running gateway, and
POST /api/login served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import uvicorn
from starlette.applications import Starlette

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, fresh_database, new_database, with_database
from tests.integration.support import until
from trademesh.core.platform.access.contracts import Scope
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.core.platform.errors import Unauthenticated, Unavailable
from trademesh.gateway.auth.authenticator import GatewayAuth
from trademesh.gateway.auth.keyfile import ensure_key_file, read_key_file
from trademesh.gateway.auth.schema import MIGRATIONS, ensure_schema
from trademesh.gateway.auth.store import KeyStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

SECRET = b"integration-test-session-secret-0123456789"
REFRESH_S = 0.2
KNOWN_WITHIN_S = 5.0  # a change the refreshing cache reads (every REFRESH_S) seen within this
MISS_REREAD_S = 1.1  # past the cache's rate limit on its re-read at a miss (1 s)
UNREACHABLE = "postgresql://keeper:hunter2-secret@127.0.0.1:1/keys"
STUDIO = frozenset({Scope.READ, Scope.TRADE})


@pytest.fixture(scope="module")
async def keys_db(database_url: str) -> AsyncIterator[str]:
    """One database for this module's tests; each test uses key names of its own."""
    async with new_database(database_url, "gwauth") as url:
        yield url


@pytest.fixture
async def auth(keys_db: str) -> AsyncIterator[GatewayAuth]:
    opened = await GatewayAuth.open(keys_db, SECRET, 3600.0, refresh_s=REFRESH_S)
    yield opened
    await opened.close()


def keys_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["keys", *args], {**os.environ, DATABASE_URL: url}, timeout_s=60)


async def create_key(url: str, name: str) -> str:
    result = await asyncio.to_thread(keys_cli, url, "create", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def refusal(auth: GatewayAuth, header: str | None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await auth.authenticate(header)
    return str(caught.value)


async def becomes_valid(auth: GatewayAuth, header: str) -> str:
    """The key name, once the refreshing cache knows the credential."""

    async def check() -> str | None:
        try:
            return (await auth.authenticate(header)).key_name
        except Unauthenticated:
            return None

    return await until(check, KNOWN_WITHIN_S, what="the key known to the gateway")


async def scopes_become(auth: GatewayAuth, header: str, expected: set[Scope] | frozenset[Scope]) -> None:
    """Waits until the refreshing cache gives the credential `expected` scopes."""

    async def check() -> bool | None:
        try:
            return True if (await auth.authenticate(header)).scopes == expected else None
        except Unauthenticated:  # not known yet
            return None

    await until(check, KNOWN_WITHIN_S, what=f"the scopes {sorted(expected)}")


# ---- trademesh keys


async def test_create_prints_the_key_once_and_stores_only_its_digest(keys_db: str) -> None:
    result = await asyncio.to_thread(keys_cli, keys_db, "create", "alpha")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("tmk_") and len(key) >= 40
    assert "shown this once" in result.stderr and key not in result.stderr
    conn = await asyncpg.connect(keys_db)
    try:
        row = await conn.fetchrow("SELECT * FROM gateway_api_keys WHERE name = 'alpha'")
    finally:
        await conn.close()
    assert row is not None and bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
    assert all(key not in str(value) and key.encode() != value for value in row.values())


async def test_list_shows_names_and_revocations_but_never_keys_or_digests(keys_db: str) -> None:
    key = await create_key(keys_db, "listed")
    revoked = await asyncio.to_thread(keys_cli, keys_db, "revoke", "listed")
    assert revoked.returncode == 0 and "revoked key 'listed'" in revoked.stdout
    await create_key(keys_db, "listed-live")
    result = await asyncio.to_thread(keys_cli, keys_db, "list")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert lines["NAME"] == ["NAME", "CREATED", "REVOKED", "SCOPES"]
    assert lines["listed"][2] != "-" and lines["listed-live"][2] == "-"
    assert lines["listed"][3] == "read" and lines["listed-live"][3] == "read"
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert key not in result.stdout and digest not in result.stdout


BAD_NAMES = ["Upper", "_under-first", ".dot-first", "with space", "x" * 64, "semi;colon", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_bad_key_name_exits_2_naming_it(keys_db: str, name: str) -> None:
    result = await asyncio.to_thread(keys_cli, keys_db, "create", name)
    assert result.returncode == 2
    assert f"{name!r} is not a key name" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_duplicate_name_is_refused_and_keeps_the_first_key(keys_db: str, auth: GatewayAuth) -> None:
    key = await create_key(keys_db, "twice")
    result = await asyncio.to_thread(keys_cli, keys_db, "create", "twice")
    assert result.returncode == 2 and result.stdout == ""
    assert "a key named 'twice' exists already" in result.stderr
    assert await becomes_valid(auth, f"Bearer {key}") == "twice"


async def test_revoking_an_unknown_or_revoked_name_says_so(keys_db: str) -> None:
    unknown = await asyncio.to_thread(keys_cli, keys_db, "revoke", "nobody")
    assert unknown.returncode == 2 and "no key named 'nobody'" in unknown.stderr
    await create_key(keys_db, "once")
    assert (await asyncio.to_thread(keys_cli, keys_db, "revoke", "once")).returncode == 0
    again = await asyncio.to_thread(keys_cli, keys_db, "revoke", "once")
    assert again.returncode == 2 and "key 'once' is already revoked" in again.stderr


async def test_a_revoked_name_can_be_given_a_new_key(keys_db: str, auth: GatewayAuth) -> None:
    old = await create_key(keys_db, "rotated")
    await becomes_valid(auth, f"Bearer {old}")
    old_session, _ = await auth.login(old)
    assert (await asyncio.to_thread(keys_cli, keys_db, "revoke", "rotated")).returncode == 0
    new = await create_key(keys_db, "rotated")
    assert await becomes_valid(auth, f"Bearer {new}") == "rotated"
    assert "is revoked" in await refusal(auth, f"Bearer {old}")
    assert "was revoked" in await refusal(auth, f"Bearer {old_session}")  # not revived by the name


@pytest.mark.parametrize("action", [["list"], ["create", "ci"], ["revoke", "ci"]])
async def test_an_unreachable_database_is_one_clear_line_without_the_password(action: list[str]) -> None:
    result = await asyncio.to_thread(keys_cli, UNREACHABLE, *action)
    assert result.returncode == 2 and result.stdout == ""
    assert "cannot connect to PostgreSQL at postgresql://keeper:***@127.0.0.1:1/keys" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


async def test_a_malformed_url_is_one_clear_line_without_the_password() -> None:
    result = await asyncio.to_thread(keys_cli, "postgresql://keeper:hunter2-secret@[bad/keys", "list")
    assert result.returncode == 2
    assert "DATABASE_URL: postgresql://keeper:***@[bad/keys is not a postgresql://" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


async def test_a_missing_database_is_one_clear_line(database_url: str) -> None:
    result = await asyncio.to_thread(keys_cli, with_database(database_url, "no_such_db_here"), "list")
    assert result.returncode == 2
    assert "cannot connect to PostgreSQL" in result.stderr and "no_such_db_here" in result.stderr
    assert "Traceback" not in result.stderr


# ---- scopes


async def test_a_key_gets_the_scopes_named_else_read_and_list_shows_them(
    keys_db: str, auth: GatewayAuth
) -> None:
    plain = await create_key(keys_db, "scoped-plain")
    made = await asyncio.to_thread(
        keys_cli, keys_db, "create", "scoped-trader", "--scope", "trade", "--scope", "read"
    )
    assert made.returncode == 0 and "with scopes read,trade" in made.stderr, made.stderr
    await scopes_become(auth, f"Bearer {plain}", {Scope.READ})
    await scopes_become(auth, f"Bearer {made.stdout.strip()}", {Scope.READ, Scope.TRADE})
    listed = await asyncio.to_thread(keys_cli, keys_db, "list")
    rows = {line.split()[0]: line.split()[-1] for line in listed.stdout.splitlines()}
    assert rows["scoped-plain"] == "read" and rows["scoped-trader"] == "read,trade"


@pytest.mark.parametrize("action", [["create", "badscope"], ["scopes", "badscope"]])
async def test_an_unknown_scope_exits_2_naming_it(keys_db: str, action: list[str]) -> None:
    result = await asyncio.to_thread(keys_cli, keys_db, *action, "--scope", "read", "--scope", "write")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'write' is not a scope: use read, trade, admin, close_all" in lines[0]
    listed = await asyncio.to_thread(keys_cli, keys_db, "list")
    assert "badscope" not in listed.stdout


async def test_setting_scopes_needs_one_and_a_live_key(keys_db: str) -> None:
    none = await asyncio.to_thread(keys_cli, keys_db, "scopes", "nobody-here")
    assert none.returncode == 2 and "scope: none given" in none.stderr
    unknown = await asyncio.to_thread(keys_cli, keys_db, "scopes", "nobody-here", "--scope", "admin")
    assert unknown.returncode == 2 and "no live key named 'nobody-here'" in unknown.stderr


async def test_a_session_has_its_keys_scopes_now_not_those_at_login(keys_db: str, auth: GatewayAuth) -> None:
    made = await asyncio.to_thread(
        keys_cli, keys_db, "create", "narrowed", "--scope", "read", "--scope", "trade", "--scope", "admin"
    )
    assert made.returncode == 0, made.stderr
    await becomes_valid(auth, f"Bearer {made.stdout.strip()}")
    token, _ = await auth.login(made.stdout.strip())
    assert (await auth.authenticate(f"Bearer {token}")).scopes == {Scope.READ, Scope.TRADE, Scope.ADMIN}
    narrowed = await asyncio.to_thread(keys_cli, keys_db, "scopes", "narrowed", "--scope", "read")
    assert narrowed.returncode == 0 and "now has scopes read" in narrowed.stdout
    await scopes_become(auth, f"Bearer {token}", {Scope.READ})


async def test_keys_made_before_scopes_existed_keep_every_scope(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await ensure_schema(conn, MIGRATIONS[:1])
        await conn.execute(
            "INSERT INTO gateway_api_keys (name, key_hash) VALUES ('old', $1)", hashlib.sha256(b"x").digest()
        )
        await ensure_schema(conn)
        scopes = await conn.fetchval("SELECT scopes FROM gateway_api_keys WHERE name = 'old'")
    finally:
        await conn.close()
    assert sorted(scopes) == ["admin", "read", "trade"]
    store = await KeyStore.open(fresh_database)
    try:
        # Every scope of the time, not close_all: that one is only ever granted on purpose.
        assert (await store.records())[0].scopes == {Scope.READ, Scope.TRADE, Scope.ADMIN}
    finally:
        await store.close()


# ---- first use of a fresh database


async def test_stores_opening_together_on_a_fresh_database_create_the_schema_once(
    fresh_database: str,
) -> None:
    stores = await asyncio.gather(*(KeyStore.open(fresh_database) for _ in range(6)))
    try:
        names = [f"k{n}" for n in range(6)]
        await asyncio.gather(
            *(store.create(name, [Scope.READ]) for store, name in zip(stores, names, strict=True))
        )
        assert sorted(record.name for record in await stores[0].records()) == names
    finally:
        for store in stores:
            await store.close()
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM gateway_schema_migrations") == len(MIGRATIONS)
        assert await ensure_schema(conn) == []
    finally:
        await conn.close()


@pytest.mark.slow  # many CLI processes at once: not in the fast tier
async def test_cli_processes_racing_on_a_fresh_database_all_succeed(fresh_database: str) -> None:
    results = await asyncio.gather(
        *(asyncio.to_thread(keys_cli, fresh_database, "create", f"race{n}") for n in range(3))
    )
    assert [result.returncode for result in results] == [0, 0, 0], [r.stderr for r in results]
    listed = await asyncio.to_thread(keys_cli, fresh_database, "list")
    assert {line.split()[0] for line in listed.stdout.splitlines()[1:]} == {"race0", "race1", "race2"}


# ---- GatewayAuth


async def test_a_live_key_authenticates_as_its_name(keys_db: str, auth: GatewayAuth) -> None:
    key = await create_key(keys_db, "bravo")
    assert await becomes_valid(auth, f"Bearer {key}") == "bravo"
    assert (await auth.authenticate(f"bearer   {key}  ")).key_name == "bravo"


async def test_a_key_created_after_the_gateway_started_works_at_once(keys_db: str) -> None:
    # The background re-read is an hour away: only the re-read on a miss can find the new key.
    slow = await GatewayAuth.open(keys_db, SECRET, 3600.0, refresh_s=3600.0)
    read_at = time.monotonic()  # the cache read its rows before: at the latest now
    try:
        key = await create_key(keys_db, "late")
        await _past_the_miss_limit(read_at)
        assert (await slow.authenticate(f"Bearer {key}")).key_name == "late"  # a miss: re-read
        read_at = time.monotonic()
        later = await create_key(keys_db, "later")
        await _past_the_miss_limit(read_at)
        token, _ = await slow.login(later)
        assert (await slow.authenticate(f"Bearer {token}")).key_name == "later"
        with pytest.raises(Unauthenticated, match="unknown API key"):
            await slow.authenticate(f"Bearer {key}x")  # and a wrong key still fails
    finally:
        await slow.close()


async def _past_the_miss_limit(read_at: float) -> None:
    """Until MISS_REREAD_S after the cache's last read (the key's creation took some of it)."""
    await asyncio.sleep(max(0.0, read_at + MISS_REREAD_S - time.monotonic()))


async def test_revocation_reaches_a_running_gateway_and_its_sessions_within_the_refresh(
    keys_db: str, auth: GatewayAuth
) -> None:
    key = await create_key(keys_db, "charlie")
    await becomes_valid(auth, f"Bearer {key}")
    token, _ = await auth.login(key)
    assert (await auth.authenticate(f"Bearer {token}")).key_name == "charlie"

    assert (await asyncio.to_thread(keys_cli, keys_db, "revoke", "charlie")).returncode == 0
    revoked_at = time.monotonic()

    async def refused() -> str | None:
        try:
            await auth.authenticate(f"Bearer {key}")
        except Unauthenticated as exc:
            return str(exc)
        return None

    message = await until(refused, 5.0, what="the revoked key refused")
    assert time.monotonic() - revoked_at < 3 * REFRESH_S + 1.0
    assert message == "API key 'charlie' is revoked: use another key"
    assert "was revoked: log in with a live key" in await refusal(auth, f"Bearer {token}")
    with pytest.raises(Unauthenticated):
        await auth.login(key)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer", "missing bearer token"),
        ("Bearer    ", "missing bearer token"),
        ("Basic dXNlcjpwYXNzd29yZA==", "unsupported authorization scheme"),
        ("Bearer tmk_" + "Q" * 43, "unknown API key"),
        ("Bearer tmk_short-guess", "unknown API key"),
        ("Bearer guess-what-secret", "invalid bearer token"),
        ("Bearer tms_eyJrIjoxfQ.c2lnbmF0dXJl", "invalid session token: log in again"),
    ],
)
async def test_bad_credentials_are_refused_without_being_echoed(
    auth: GatewayAuth, header: str | None, expected: str
) -> None:
    message = await refusal(auth, header)
    assert message.startswith(expected)
    credential = (header or "").partition(" ")[2].strip()
    assert credential == "" or credential not in message


async def test_a_session_expires_after_its_ttl(keys_db: str) -> None:
    key = await create_key(keys_db, "delta")
    short = await GatewayAuth.open(keys_db, SECRET, 0.4, refresh_s=REFRESH_S)
    try:
        token, session = await short.login(key)
        assert (await short.authenticate(f"Bearer {token}")).key_name == "delta"
        await asyncio.sleep(max(0.0, session.expires_at_ms / 1000 - time.time()) + 0.05)
        assert await refusal(short, f"Bearer {token}") == "session expired: log in again"
        assert (await short.authenticate(f"Bearer {key}")).key_name == "delta"  # the key itself lives on
    finally:
        await short.close()


async def test_a_tampered_session_token_is_refused(keys_db: str, auth: GatewayAuth) -> None:
    key = await create_key(keys_db, "echo")
    await becomes_valid(auth, f"Bearer {key}")
    token, _ = await auth.login(key)
    middle = len(token) // 2
    tampered = token[:middle] + ("x" if token[middle] != "x" else "y") + token[middle + 1 :]
    assert await refusal(auth, f"Bearer {tampered}") == "invalid session token: log in again"


async def test_sessions_outlive_a_gateway_restart_only_with_a_configured_secret(keys_db: str) -> None:
    key = await create_key(keys_db, "foxtrot")
    tokens = {}
    for secret in (SECRET, None):
        first = await GatewayAuth.open(keys_db, secret, 3600.0)
        tokens[secret] = (await first.login(key))[0]
        await first.close()
    restarted = await GatewayAuth.open(keys_db, SECRET, 3600.0)
    try:
        assert (await restarted.authenticate(f"Bearer {tokens[SECRET]}")).key_name == "foxtrot"
        assert "invalid session token" in await refusal(restarted, f"Bearer {tokens[None]}")
    finally:
        await restarted.close()


async def test_opening_on_an_unreachable_database_is_unavailable_with_the_url_redacted() -> None:
    with pytest.raises(Unavailable) as caught:
        await GatewayAuth.open(UNREACHABLE, SECRET, 3600.0)
    assert "postgresql://keeper:***@127.0.0.1:1/keys" in str(caught.value)
    assert "hunter2" not in str(caught.value)


# ---- POST /api/login over HTTP


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool | None:
        return True if server.started else None

    await until(started, 10.0, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def login_url(auth: GatewayAuth) -> AsyncIterator[str]:
    async with serving(Starlette(routes=auth.routes())) as base:
        yield f"{base}/api/login"


async def post(url: str, body: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.post(url, data=body) as response:
        return response.status, dict(response.headers), await response.json()


async def test_login_trades_a_live_key_for_a_session_token(
    keys_db: str, auth: GatewayAuth, login_url: str
) -> None:
    key = await create_key(keys_db, "golf")
    await becomes_valid(auth, f"Bearer {key}")
    status, headers, body = await post(login_url, f'{{"key": "{key}"}}'.encode())
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert body["key_name"] == "golf" and isinstance(body["token"], str)
    expires_at_ms = body["expires_at_ms"]
    assert isinstance(expires_at_ms, int)
    assert abs(expires_at_ms - (time.time() + 3600) * 1000) < 60_000
    assert (await auth.authenticate(f"Bearer {body['token']}")).key_name == "golf"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "body: not JSON"),
        (b"key=tmk_abc", "body: not JSON"),
        (b"[1, 2]", "key: missing"),
        (b'{"token": "tmk_abc"}', "key: missing"),
        (b'{"key": 12}', "key: missing"),
        (b'{"key": ""}', "key: missing"),
        (b'{"key": "' + b"a" * 5000 + b'"}', "body: larger than 4096 bytes"),
        # Under 4 KiB, and a RecursionError (HTTP 500, a traceback) in json before the bound.
        (b"[" * 4000, "body: nested deeper than 64 levels"),
        (b'{"key": ' + b'{"a": ' * 300 + b"1" + b"}" * 301, "body: nested deeper than 64 levels"),
    ],
)
async def test_a_malformed_login_body_is_400_naming_the_problem(
    login_url: str, body: bytes, expected: str
) -> None:
    status, _, answer = await post(login_url, body)
    assert status == 400
    assert str(answer["error"]).startswith(expected)


async def test_failed_logins_are_401_then_throttled_with_retry_after(
    keys_db: str, auth: GatewayAuth, login_url: str
) -> None:
    key = await create_key(keys_db, "hotel")
    await becomes_valid(auth, f"Bearer {key}")
    wrong = "tmk_" + "W" * 43
    for _ in range(10):
        status, _, answer = await post(login_url, f'{{"key": "{wrong}"}}'.encode())
        assert status == 401 and answer["error"] == "unknown or revoked API key"
    status, headers, answer = await post(login_url, f'{{"key": "{key}"}}'.encode())
    assert status == 429 and "too many failed logins" in str(answer["error"])
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_malformed_login_bodies_count_as_failed_logins_and_are_throttled(
    keys_db: str, auth: GatewayAuth, login_url: str
) -> None:
    key = await create_key(keys_db, "hotel-nested")
    await becomes_valid(auth, f"Bearer {key}")
    for _ in range(10):
        status, _, answer = await post(login_url, b"[" * 4000)
        assert status == 400 and "nested deeper" in str(answer["error"])
    status, headers, answer = await post(login_url, f'{{"key": "{key}"}}'.encode())
    assert status == 429 and "too many failed logins" in str(answer["error"])
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_a_revoked_key_cannot_log_in(keys_db: str, auth: GatewayAuth, login_url: str) -> None:
    key = await create_key(keys_db, "india")
    await becomes_valid(auth, f"Bearer {key}")
    assert (await asyncio.to_thread(keys_cli, keys_db, "revoke", "india")).returncode == 0

    async def refused() -> int | None:
        status, _, _ = await post(login_url, f'{{"key": "{key}"}}'.encode())
        return status if status == 401 else None

    assert await until(refused, 5.0, interval_s=0.2, what="the revoked key's login refused") == 401


# ---- the key file of `trademesh up`


async def test_ensure_key_file_makes_a_private_key_once_and_replaces_a_stale_one(
    keys_db: str, auth: GatewayAuth, tmp_path: Path
) -> None:
    path = tmp_path / "data" / "gateway.key"
    assert await ensure_key_file(keys_db, "local-studio", path, STUDIO) is True
    assert path.stat().st_mode & 0o777 == 0o600
    first = read_key_file(path)
    assert first is not None
    assert await becomes_valid(auth, f"Bearer {first}") == "local-studio"
    assert await ensure_key_file(keys_db, "local-studio", path, STUDIO) is False
    assert read_key_file(path) == first

    # A live key of other scopes (made by an older `trademesh up`) is given the ones asked for.
    assert await ensure_key_file(keys_db, "local-studio", path, {Scope.READ}) is False
    await scopes_become(auth, f"Bearer {first}", {Scope.READ})
    assert await ensure_key_file(keys_db, "local-studio", path, STUDIO) is False
    await scopes_become(auth, f"Bearer {first}", STUDIO)

    path.write_text("not a key\n")
    assert await ensure_key_file(keys_db, "local-studio", path, STUDIO) is True
    second = read_key_file(path)
    assert second is not None and second != first
    assert await becomes_valid(auth, f"Bearer {second}") == "local-studio"
    assert "is revoked" in await refusal(auth, f"Bearer {first}")


async def test_ensure_key_file_replaces_a_key_revoked_with_the_cli(keys_db: str, tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    assert await ensure_key_file(keys_db, "juliet", path, STUDIO) is True
    assert (await asyncio.to_thread(keys_cli, keys_db, "revoke", "juliet")).returncode == 0
    old = read_key_file(path)
    assert await ensure_key_file(keys_db, "juliet", path, STUDIO) is True
    assert read_key_file(path) not in (None, old)
