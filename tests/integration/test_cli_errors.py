"""Every bad input to a service's command line gives one line naming the bad value and exit code 2.

(Issue 12, item 12: no traceback, whatever is wrong: a URL, a port, a host, a config file,
an environment variable.) And a service whose dependency is down waits for it instead.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)


def _run(
    args: list[str], env: dict[str, str] | None = None, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "TRADEMESH_TOKEN": "t", **(env or {})},
    )


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("configs")
    (folder / "typo.toml").write_text("outage_minute = 5\n")
    (folder / "nan.toml").write_text("rate_per_s = nan\n")
    (folder / "broken.toml").write_text("[[venues]\n")
    (folder / "address.toml").write_text('[[venues]]\nname = "sim"\naddress = "127.0.0.1:99999"\n')
    return folder


CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    (
        "redis url flag",
        ["bridge", "--port", "0", "--redis-url", "localhost:6379"],
        {},
        "redis-url: localhost:6379 is not a redis:// or rediss:// or unix:// URL",
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
        "database-url: host=db user=u is not a postgresql:// or postgres:// URL",
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
]


@pytest.mark.parametrize(("args", "env", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_value_is_one_line_naming_it_and_exit_code_2(
    args: list[str], env: dict[str, str], says: str
) -> None:
    done = _run(args, env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("typo.toml", "outage_minute: unknown key; known: venues, outage_minutes, rate_per_s"),
        ("nan.toml", "rate_per_s: nan is not a positive number"),
        ("broken.toml", "config: cannot read"),
        ("address.toml", "venues[0].address: '127.0.0.1:99999' is not HOST:PORT"),
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
        [sys.executable, "-m", "core.cli", "ingest", "--port", "0", "--metrics-port", "-1",
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
