"""Start-time checks of issue 37, item 24 (one line on stderr naming the option, exit code 2, no
traceback, no secret echoed): a share of equity is in (0, 1]; a notification URL is an http(s)
URL with a host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.forked_services import run_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # processes: not the fast tier

SECRET = "s3cr3t-hook-token"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_command(args, {**os.environ, "TRADEMESH_TOKEN": "t", **(env or {})}, timeout_s=60)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


ADVISOR = ["advisor", "--port", "0", "--metrics-port", "-1", "--redis-url", "redis://127.0.0.1:1/0"]


@pytest.mark.parametrize("share", ["2", "0", "1.5"])
def test_a_notional_share_outside_0_to_1_stops_the_advisor(share: str) -> None:
    line = _one_line(_run([*ADVISOR, "--max-notional-share", share]))
    assert "--max-notional-share" in line and "(0, 1]" in line


def test_a_notional_share_outside_0_to_1_in_the_advisors_config_stops_it(tmp_path: Path) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text('[sizing]\nmax_notional_share = "2"\n')
    line = _one_line(_run([*ADVISOR, "--config", str(config)]))
    assert "sizing.max_notional_share: must be more than 0 and at most 1, got 2" in line
    assert line.endswith(f"(in {config})")


INSPECTOR = ["inspector", "--port", "0", "--metrics-port", "-1", "--redis-url", "redis://127.0.0.1:1/0"]
BAD_URLS = [
    f"hooks.example.com/{SECRET}",
    f"ftp://hooks.example.com/{SECRET}",
    f"https:///{SECRET}",
    f"http://hooks.example.com:99999/{SECRET}",
]


@pytest.mark.parametrize("variable", ["TRADEMESH_NOTIFY_WEBHOOK_URL", "TRADEMESH_TELEGRAM_BASE_URL"])
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_notification_url_that_is_not_http_stops_the_inspector_unechoed(variable: str, url: str) -> None:
    env = {variable: url, "TRADEMESH_TELEGRAM_BOT_TOKEN": "123:abc", "TRADEMESH_TELEGRAM_CHAT_ID": "-1"}
    done = _run(INSPECTOR, env)
    line = _one_line(done)
    assert variable in line and "http" in line
    assert SECRET not in done.stderr + done.stdout


# Issue 57, items 16a, 16b and 9: the Supervisor's and the bot's URLs and chats, a token with a
# newline, the Alertmanager's URL: one line naming the setting, no password echoed.
PASSWORD = "Sentinel-pw-57"
SUPERVISOR = ["supervisor", "--port", "0", "--metrics-port", "-1"]
TELEGRAM = ["telegram", "--port", "0", "--metrics-port", "-1"]
BOT = {"TRADEMESH_TELEGRAM_BOT_TOKEN": "123:abc", "TRADEMESH_TELEGRAM_API_KEY": "k"}


@pytest.mark.parametrize("url", [f"ftp://ops:{PASSWORD}@gw", f"ops:{PASSWORD}@gw:8081", "http://:8081"])
@pytest.mark.parametrize(
    ("args", "env"), [(SUPERVISOR, {"TRADEMESH_SUPERVISOR_API_KEY": "k"}), (TELEGRAM, BOT)]
)
def test_a_gateway_url_that_is_not_http_stops_the_supervisor_and_the_bot(
    args: list[str], env: dict[str, str], url: str
) -> None:
    done = _run([*args, "--gateway-url", url], {**env, "TRADEMESH_TELEGRAM_CHAT_ID": "42"})
    line = _one_line(done)
    assert "gateway-url" in line and "is not an http:// or https:// URL with a host" in line
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRADEMESH_TELEGRAM_COMMAND_CHAT_IDS", "42,1_000"),
        ("TRADEMESH_TELEGRAM_CHAT_ID", "+42"),
        ("TRADEMESH_TELEGRAM_BASE_URL", f"api.telegram.org/{PASSWORD}"),
    ],
)
def test_the_bots_chats_and_bot_api_url_are_checked_at_start(variable: str, value: str) -> None:
    done = _run(TELEGRAM, {**BOT, "TRADEMESH_TELEGRAM_CHAT_ID": "42", variable: value})
    assert variable in _one_line(done)
    assert PASSWORD not in done.stderr + done.stdout


def test_the_notices_chat_is_checked_when_the_inspector_starts() -> None:
    env = {"TRADEMESH_TELEGRAM_BOT_TOKEN": "123:abc", "TRADEMESH_TELEGRAM_CHAT_ID": "my chat"}
    line = _one_line(_run(INSPECTOR, env))
    assert "TRADEMESH_TELEGRAM_CHAT_ID: 'my chat' is not a chat id" in line


@pytest.mark.parametrize("token", [f"{PASSWORD}\n", f" {PASSWORD}", f"{PASSWORD}\t"])
def test_a_mesh_token_with_whitespace_stops_the_service_naming_the_variable(token: str) -> None:
    done = _run(["bridge", "--port", "0", "--metrics-port", "-1"], {"TRADEMESH_TOKEN": token})
    assert "TRADEMESH_TOKEN: holds whitespace" in _one_line(done)
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("args", "variable", "env"),
    [
        (INSPECTOR, "TRADEMESH_TRADE_TOKEN", {}),
        (INSPECTOR, "TRADEMESH_SIM__DESK_A_TRADE_TOKEN", {"TRADEMESH_TRADE_TOKEN": "trade"}),
        (SUPERVISOR, "TRADEMESH_SUPERVISOR_API_KEY", {}),
        (TELEGRAM, "TRADEMESH_TELEGRAM_API_KEY", {**BOT, "TRADEMESH_TELEGRAM_CHAT_ID": "42"}),
    ],
)
def test_a_bearer_secret_with_a_newline_stops_the_service_that_sends_it(
    args: list[str], variable: str, env: dict[str, str]
) -> None:
    done = _run(args, {**env, variable: f"{PASSWORD}\n"})
    assert f"{variable}: holds whitespace" in _one_line(done)
    assert PASSWORD not in done.stderr + done.stdout


def test_the_alertmanager_urls_password_is_not_in_its_error() -> None:
    url = f"http://am:{PASSWORD}@alertmanager:99999"
    done = _run(["gateway", "--port", "0", "--grpc-port", "0", "--alertmanager-url", url])
    assert "http://am:***@alertmanager:99999 has a port that is not 1-65535" in _one_line(done)
    assert PASSWORD not in done.stderr + done.stdout
