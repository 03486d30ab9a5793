"""The login throttle counts per client, and who the client is cannot be chosen by the client:
X-Forwarded-For is believed only from a configured proxy (`trademesh gateway --trusted-proxy`).
Real gateway processes; logins over HTTP from 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.integration.gateway_support import Gateway, Processes, module_database
from tests.integration.postgres_server import database_url

pytestmark = pytest.mark.integration
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

WRONG = '{"key": "tmk_' + "W" * 43 + '"}'
FAILURES_ALLOWED = 10  # trademesh.gateway.auth.throttle's default, per client a minute


async def login_statuses(gateway: Gateway, spoofed: list[str]) -> list[int]:
    """One wrong login per X-Forwarded-For value, in order: their HTTP statuses."""
    statuses = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for address in spoofed:
            headers = {"X-Forwarded-For": address, "content-type": "application/json"}
            async with http.post(f"{gateway.url}/api/login", data=WRONG, headers=headers) as reply:
                statuses.append(reply.status)
    return statuses


def rotating(count: int) -> list[str]:
    return [f"203.0.113.{i}" for i in range(1, count + 1)]


async def test_forwarded_headers_from_an_untrusted_peer_do_not_escape_the_throttle(
    tmp_path: Path, module_database: str
) -> None:
    processes = Processes(tmp_path, module_database)
    try:
        gateway = processes.gateway()
        statuses = await login_statuses(gateway, rotating(FAILURES_ALLOWED + 5))
        assert statuses[:FAILURES_ALLOWED] == [401] * FAILURES_ALLOWED
        assert statuses[FAILURES_ALLOWED:] == [429] * 5, statuses
        assert "203.0.113." not in gateway.log(), "the log names a spoofed address"
    finally:
        await processes.stop_all()


async def test_a_trusted_proxy_names_the_client_and_each_client_has_its_own_count(
    tmp_path: Path, module_database: str
) -> None:
    processes = Processes(tmp_path, module_database)
    try:
        gateway = processes.gateway("--trusted-proxy", "127.0.0.0/8")
        statuses = await login_statuses(gateway, rotating(FAILURES_ALLOWED + 5))
        assert statuses == [401] * (FAILURES_ALLOWED + 5), "clients behind the proxy are counted apart"
        same = await login_statuses(gateway, ["198.51.100.7"] * (FAILURES_ALLOWED + 1))
        assert same[-1] == 429, same
        assert "from 198.51.100.7" in gateway.log()
    finally:
        await processes.stop_all()
