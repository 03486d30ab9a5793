"""Every bad input to a service's command line gives one line naming the bad value and exit code 2.

(Issue 12, item 12: no traceback, whatever is wrong: a URL, a port, a host, a config file,
an environment variable.) And a service whose dependency is down waits for it instead.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import selectors
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures


def _run(
    args: list[str], env: dict[str, str] | None = None, timeout_s: float = 90, exec_d: bool = False
) -> subprocess.CompletedProcess[str]:
    """The command's answer; `timeout_s` is a deadline against a hang, not a speed: a service
    starts its database and models before it meets the bad value, which on a loaded machine
    (the suite's workers beside mypy on two cores) took past 30 s. Forked from the suite's
    pre-imported Python (tests/forked_services.py), or `exec_d` as a user starts it."""
    environment = {**os.environ, "TRADEMESH_TOKEN": "t", **(env or {})}
    if not exec_d:
        return run_command(args, environment, timeout_s)
    command = [sys.executable, "-m", "trademesh.core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=environment)


# The cases are independent, and no fixture here is module-scoped: the suite's scheduler
# (tests/workers.py) runs a module's tests that use one on one worker, one after another. The
# files and the busy port are each test's own; the servers and the database, the session's.


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "typo.toml").write_text("outage_minute = 5\n")
    (folder / "nan.toml").write_text("rate_per_s = nan\n")
    (folder / "broken.toml").write_text("[[venues]\n")
    (folder / "address.toml").write_text('[[venues]]\nname = "sim"\naddress = "127.0.0.1:99999"\n')
    (folder / "name.toml").write_text('[[venues]]\nname = "Sim Venue!"\naddress = "127.0.0.1:5050"\n')
    (folder / "paper.toml").write_text("latency_ms = -1\n")
    (folder / "latin1.toml").write_bytes('# Montréal\nstart_price = "1"\n'.encode("latin-1"))
    (folder / "advisor-nan.toml").write_text("[validation]\nmin_risk_reward = nan\n")
    (folder / "advisor-nan-float.toml").write_text("[validation]\nmin_conviction = nan\n")
    return folder


CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    (
        "redis url flag",
        ["bridge", "--port", "0", "--redis-url", "localhost:6379"],
        {},
        "redis-url: l*** (14 characters) is not a redis:// or rediss:// or unix:// or redis+cluster:// "
        "or rediss+cluster:// URL",
    ),
    (
        "redis url env",
        ["bars", "--port", "0"],
        {"REDIS_URL": "http://x"},
        "REDIS_URL: http://x is not a redis://",
    ),
    (
        "database url ipv6",
        ["recorder", "--port", "0", "--database-url", "postgresql://u@[::1/db"],
        {},
        "database-url: postgresql://u@[::1/db is not a postgresql://",
    ),
    (
        "database url dsn",
        ["gateway", "--port", "0", "--grpc-port", "0", "--database-url", "host=db user=u"],
        {},
        "database-url: h*** (14 characters) is not a postgresql:// or postgres:// URL",
    ),
    ("port too big", ["bridge", "--port", "70000"], {}, "argument --port: 70000 is not a port"),
    (
        "trusted proxy",
        ["gateway", "--trusted-proxy", "10.0.0.0/33"],
        {},
        "argument --trusted-proxy: '10.0.0.0/33' is not an IP address or network",
    ),
    ("port negative", ["ingest", "--port", "-5"], {}, "argument --port: must be at least 0, got -5"),
    ("port not a number", ["bars", "--port", "http"], {}, "argument --port: 'http' is not a whole number"),
    (
        "metrics port",
        ["bridge", "--port", "0", "--metrics-port", "99999"],
        {},
        "argument --metrics-port: 99999",
    ),
    (
        "metrics port -2",
        ["bridge", "--port", "0", "--metrics-port", "-2"],
        {},
        "--metrics-port: must be at least 0",
    ),
    ("grpc port", ["gateway", "--grpc-port", "65536"], {}, "argument --grpc-port: 65536 is not a port"),
    (
        "host",
        ["bridge", "--host", "no-such-host.invalid", "--port", "0"],
        {},
        "cannot listen on no-such-host.invalid:0",
    ),
    (
        "log level",
        ["bridge", "--port", "0"],
        {"TRADEMESH_LOG_LEVEL": "LOUD"},
        "TRADEMESH_LOG_LEVEL: 'LOUD' is not one of",
    ),
    (
        "log format",
        ["bridge", "--port", "0"],
        {"TRADEMESH_LOG_FORMAT": "xml"},
        "TRADEMESH_LOG_FORMAT: 'xml' is not one of",
    ),
    (
        "trade token same as the mesh token",
        ["venue", "sim", "--port", "0"],
        {"TRADEMESH_TRADE_TOKEN": "t"},
        "TRADEMESH_TRADE_TOKEN: must differ from the mesh token (TRADEMESH_TOKEN)",
    ),
    (
        "drain delay",
        ["venue", "sim", "--port", "0"],
        {"TRADEMESH_DRAIN_DELAY_S": "forever"},
        "TRADEMESH_DRAIN_DELAY_S: 'forever' is not a number of seconds in 0..60",
    ),
    ("venue link", ["ingest", "--port", "0", "--venue", "sim"], {}, "venue: 'sim' is not NAME=HOST:PORT"),
    # A name the bus refuses was taken, then followed by nothing, without a word (issue 57 item 15).
    (
        "venue link name",
        ["ingest", "--port", "0", "--venue", "Sim Venue!=127.0.0.1:5050"],
        {},
        "venue: 'Sim Venue!' is not a venue name",
    ),
    (
        "venue port",
        ["bars", "--port", "0", "--venue", "sim=127.0.0.1:0"],
        {},
        "venue: '127.0.0.1:0' is not HOST:PORT",
    ),
    ("unknown venue", ["venue", "nosuch"], {}, "argument name: unknown venue 'nosuch'"),
    ("unknown command", ["nosuch"], {}, "argument command: invalid choice: 'nosuch'"),
    (
        "resume window",
        ["venue", "sim", "--port", "0", "--resume-window-s", "-1"],
        {},
        "resume-window-s: -1.0 is negative",
    ),
    (
        "replay fault",
        ["venue", "binance", "--replay", "x", "--replay-fault", "boom@1"],
        {},
        "replay_fault: 'boom@1'",
    ),
    ("status every", ["up", "--status-every", "0"], {}, "argument --status-every: must be positive, got 0"),
    # Paper trading (docs/paper.md).
    ("paper sim", ["venue", "sim", "--port", "0", "--paper"], {}, "paper: venue 'sim' makes its own market"),
    (
        "paper config alone",
        ["venue", "binance", "--port", "0", "--paper-config", "paper.toml"],
        {},
        "paper-config: paper.toml given without --paper",
    ),
    (
        "paper variable",
        ["venue", "binance", "--port", "0"],
        {"TRADEMESH_PAPER": "yes"},
        "TRADEMESH_PAPER: 'yes' is not 1 (paper) or 0 (not)",
    ),
    ("up paper", ["up", "--paper", "sim"], {}, "argument --paper: 'sim' is not a live venue to paper-trade"),
    # Several accounts per venue (docs/accounts.md): the name, the credentials looked for.
    (
        "account name",
        ["venue", "sim", "--port", "0", "--account", "Desk_A"],
        {},
        "argument --account: 'Desk_A'",
    ),
    (
        "account credentials",
        ["venue", "binance", "--port", "0", "--account", "desk-a"],
        {"TRADEMESH_BINANCE__DESK_A_API_KEY": "desk-a-key-2f9"},
        "account desk-a at binance has no credentials: looked for TRADEMESH_BINANCE__DESK_A_API_KEY and "
        "TRADEMESH_BINANCE__DESK_A_API_SECRET; not set: TRADEMESH_BINANCE__DESK_A_API_SECRET",
    ),
    (
        "paper account",
        ["venue", "binance", "--port", "0", "--paper", "--account", "desk-a"],
        {},
        "account: desk-a is an account at the exchange: a --paper venue trades none",
    ),
    *[
        (
            f"{service} instance",
            [service, "--port", "0", "--instance", "Bad Name!"],
            {},
            "argument --instance: 'Bad Name!' is not 1-63 of a-z 0-9 _ . - starting with a letter or digit",
        )
        for service in ("ledger", "inspector", "backtester")
    ],
]


# The one case run exec'd, as a user starts the CLI (a fresh `python -m trademesh.core.cli`, every library
# imported at its start) rather than forked, so that path stays proven: the gateway's, whose
# start imports the most (the MCP SDK, uvicorn, Starlette).
EXEC_D = "database url dsn"


@pytest.mark.parametrize(("name", "args", "env", "says"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_is_one_line_naming_it_and_exit_code_2(
    name: str, args: list[str], env: dict[str, str], says: str
) -> None:
    done = _run(args, env, exec_d=name == EXEC_D)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("typo.toml", "outage_minute: unknown key; known: venues, outage_minutes, rate_per_s"),
        ("nan.toml", "rate_per_s: nan is not a finite number"),
        ("broken.toml", "config: cannot read"),
        ("address.toml", "venues[0].address: '127.0.0.1:99999' is not HOST:PORT"),
        ("name.toml", "venues[0].name: 'Sim Venue!' is not a venue name"),
    ],
)
def test_a_bad_mesh_config_is_one_line_naming_the_key(configs: Path, name: str, says: str) -> None:
    done = _run(["ingest", "--port", "0", "--mesh-config", str(configs / name)])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0], done.stderr


def test_a_port_in_use_is_one_line_with_the_reason(busy_port: int) -> None:
    for args in (
        ["bridge", "--port", str(busy_port)],
        ["bridge", "--port", "0", "--metrics-port", str(busy_port)],
    ):
        done = _run(args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert f":{busy_port}: Address already in use" in lines[0]


def test_ingest_waits_for_a_bus_that_is_down_instead_of_dying(busy_port: int) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed = spare.getsockname()[1]  # nothing listens here once the socket closes
    process = subprocess.Popen(
        [sys.executable, "-m", "trademesh.core.cli", "ingest", "--port", "0", "--metrics-port", "-1",
         "--venue", f"sim=127.0.0.1:{busy_port}", "--redis-url", f"redis://127.0.0.1:{closed}/0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    waiting = f"ingest: the bus at redis://127.0.0.1:{closed}/0 unreachable"
    try:
        # The line says it is waiting (so its signal handlers are in); a loaded machine may
        # take seconds to get there. It must still be alive a moment later.
        seen = _stderr_until(process, waiting, 60)
        time.sleep(1)
        assert process.poll() is None, seen
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, seen + err
    assert waiting in seen and "Traceback" not in seen + err


def _stderr_until(process: subprocess.Popen[str], text: str, timeout_s: float) -> str:
    """What the process wrote to stderr up to the line holding `text` (or its exit, or timeout)."""
    assert process.stderr is not None
    seen, deadline = "", time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while text not in seen and time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = process.stderr.readline()
                if not line:
                    break  # it exited
                seen += line
    return seen


# Issue 37, item 23: each of these was a traceback.
FILE_CASES: list[tuple[str, list[str], str]] = [
    ("sim config not UTF-8", ["venue", "sim", "--port", "0", "--config", "{dir}/latin1.toml"],
     "config: cannot read {dir}/latin1.toml: not UTF-8 text (byte 0xe9 at offset 7)"),
    ("policies not UTF-8",
     ["inspector", "--port", "0", "--policies", "{dir}/latin1.toml", "--redis-url", "redis://127.0.0.1:1/0"],
     "policies: cannot read {dir}/latin1.toml: not UTF-8 text"),
    ("backtest config not UTF-8", ["backtest", "--config", "{dir}/latin1.toml"], "config: cannot read"),
    ("advisor config nan", ["advisor", "--port", "0", "--config", "{dir}/advisor-nan.toml"],
     "validation.min_risk_reward: 'nan' is not a finite decimal"),
    ("advisor config float nan", ["advisor", "--port", "0", "--config", "{dir}/advisor-nan-float.toml"],
     "validation.min_conviction: nan is not a finite number"),
    ("gateway heartbeat 1e308",
     ["gateway", "--port", "0", "--grpc-port", "0", "--heartbeat-interval-s", "1e308",
      "--registry-ttl-s", "1.5e308"],
     "argument --heartbeat-interval-s: must be at most 3,600 s, got 1e308"),
    ("paper config values",
     ["venue", "binance", "--port", "0", "--paper", "--paper-config", "{dir}/paper.toml"],
     "latency_ms: must be between 0 and 60000, got -1 (in {dir}/paper.toml)"),
    ("gateway registry ttl inf", ["gateway", "--port", "0", "--grpc-port", "0", "--registry-ttl-s", "1e309"],
     "argument --registry-ttl-s: must be finite"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "says"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_a_file_or_number_no_setting_can_take_is_one_line_naming_the_setting(
    configs: Path, args: list[str], says: str
) -> None:
    done = _run([arg.replace("{dir}", str(configs)) for arg in args])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert says.replace("{dir}", str(configs)) in lines[0], done.stderr


# A password pasted where the URL goes (issue 37, item 23): every command that reads the
# variable shows its first character and length, never the rest. The other variable is a URL
# where nothing answers, so no command reaches a shared Redis or database.
PASTED = "pw-S3ntinel-not-a-url"
UNREACHABLE = {"REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}
TREND = "trademesh/core/detector/strategies/trend.toml"
RANGE = ["--from", "2026-01-01", "--to", "2026-01-02"]
BOTH = [
    ["recorder", "--port", "0"], ["detector", "--port", "0"], ["advisor", "--port", "0"],
    ["ledger", "--port", "0"], ["up", "--data-dir", "{dir}/up"],
]  # fmt: skip
URL_READERS: list[tuple[str, list[str]]] = [
    *[("REDIS_URL", args) for args in BOTH],
    *[("DATABASE_URL", args) for args in BOTH],
    *[
        ("REDIS_URL", [name, "--port", "0", *extra])
        for name, extra in (
            ("ingest", ["--venue", "sim=127.0.0.1:1"]),
            ("bars", []),
            ("bridge", []),
            ("inspector", []),
        )
    ],
    *[
        ("DATABASE_URL", args)
        for args in (
            ["gateway", "--port", "0", "--grpc-port", "0"],
            ["ledger", "verify"],
            ["backtester", "--port", "0"],
            ["keys", "list"],
            ["trace", "some-id"],
            ["backtest", "--strategy", TREND, *RANGE],
            ["backtest-sweep", "--strategy", TREND, *RANGE, "--param", "fast.period=5,6"],
            ["advisor", "train", "--venue", "sim", "--symbol", "BTC/USDT", "--since", "7d"],
        )
    ],
]


@pytest.mark.parametrize(
    ("variable", "args"), URL_READERS, ids=[f"{v} {' '.join(a[:2])}" for v, a in URL_READERS]
)
def test_a_url_that_is_not_a_url_is_shown_by_its_first_character_only(
    tmp_path: Path, variable: str, args: list[str]
) -> None:
    env = {**UNREACHABLE, variable: PASTED}
    done = _run([arg.replace("{dir}", str(tmp_path)) for arg in args], env)
    lines = done.stderr.strip().splitlines()
    assert PASTED[1:] not in done.stdout + done.stderr, done.stderr
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{variable}: p*** ({len(PASTED)} characters) is not a" in lines[0], lines[0]


def _port_of(server: socketserver.TCPServer) -> Iterator[int]:
    """The server's port while it serves on a thread of its own."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def http_port() -> Iterator[int]:
    """An HTTP server (it answers a Redis client's PING with an HTTP error page)."""
    yield from _port_of(http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler))


class _Closing(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(64)


@pytest.fixture(scope="session")
def closing_port() -> Iterator[int]:
    """A server that takes a connection and closes it on the first bytes, as PostgreSQL does a
    Redis client's PING."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Closing)
    server.daemon_threads = True
    yield from _port_of(server)


@pytest.fixture(scope="session")
async def store(database_url: str) -> AsyncIterator[str]:
    """A database the services migrate before they meet the bad bus (the worker's, shared)."""
    async with new_database(database_url, "clierr") as url:
        yield url


BUS_USERS = [
    ["bridge"], ["bars"], ["ingest", "--venue", "sim=127.0.0.1:1"], ["recorder", "--database-url", "{db}"],
    ["detector", "--no-examples", "--database-url", "{db}"], ["advisor", "--database-url", "{db}"],
    ["inspector"], ["ledger", "--database-url", "{db}"],
]  # fmt: skip


@pytest.mark.parametrize("args", BUS_USERS, ids=[a[0] for a in BUS_USERS])
@pytest.mark.parametrize("bus", ["http server", "closes on a ping", "database 99999"])
async def test_a_bus_that_is_not_redis_or_refuses_the_database_is_one_line_naming_redis_url(
    redis_url: str, http_port: int, closing_port: int, store: str, args: list[str], bus: str
) -> None:
    """Issue 37, item 23: a wrong port where an HTTP server answers was a traceback, a database
    past the server's count a traceback or a retry forever; neither can be mended by retrying.
    Issue 38: a server that closes the connection (PostgreSQL's port) was retried forever."""
    if bus == "http server":
        url = f"redis://127.0.0.1:{http_port}/0"
    elif bus == "closes on a ping":
        url = f"redis://127.0.0.1:{closing_port}/0"
    else:
        url = redis_url.rpartition("/")[0] + "/99999"
    argv = [args[0], "--port", "0", "--metrics-port", "-1", *(a.replace("{db}", store) for a in args[1:])]
    done = await asyncio.to_thread(_run, argv, {"REDIS_URL": url})
    # The service's start-up lines (its database migrated) may come first; its end is one line.
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    said = {
        "http server": ' answers, but not as Redis (Protocol error, got "<" as reply type byte)',
        "closes on a ping": " takes a connection, but closes it on a PING: not Redis",
        "database 99999": ": Redis refuses it: DB index is out of range",
    }
    assert lines[-1] == f"trademesh: REDIS_URL: {url}{said[bus]}", done.stderr
