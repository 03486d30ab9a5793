"""A third-party client: `buf curl` finds the schema by server reflection and calls the venue.

The venue serves reflection v1alpha only; buf tries v1 first and falls back on its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.support import Venue

pytestmark = pytest.mark.integration

BUF = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "buf"
# buf exits with the gRPC code shifted left by three bits when the RPC itself fails.
INVALID_ARGUMENT_EXIT = 3 << 3
UNAUTHENTICATED_EXIT = 16 << 3
PERMISSION_DENIED_EXIT = 7 << 3


async def buf_curl(venue: Venue, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: `./dev test` installs it (npm package @bufbuild/buf)")
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "20s", *args]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    return await asyncio.to_thread(run)


def url(venue: Venue, method: str = "") -> str:
    return f"http://{venue.address}/{method}"


async def test_buf_curl_lists_the_venue_services_through_reflection(venue: Venue) -> None:
    result = await buf_curl(venue, "--list-services", url(venue))
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {
        "trademesh.marketdata.v1.MarketData",
        "trademesh.tradeflow.v1.TradeFlow",
        "trademesh.admin.v1.Admin",
        "grpc.health.v1.Health",
    } <= services


async def test_buf_curl_lists_every_tradeflow_method(venue: Venue) -> None:
    # --list-methods takes the server's base URL and lists every service's methods.
    result = await buf_curl(venue, "--list-methods", url(venue))
    assert result.returncode == 0, result.stderr
    methods = set(result.stdout.split())
    expected = [
        "PlaceOrder",
        "CancelOrder",
        "CancelAllOrders",
        "GetOrder",
        "ListOpenOrders",
        "StreamExecutions",
        "AmendOrder",
        "StreamAccount",
    ]
    assert {f"trademesh.tradeflow.v1.TradeFlow/{name}" for name in expected} <= methods


async def test_buf_curl_calls_admin_get_status_with_the_token(venue: Venue) -> None:
    result = await buf_curl(venue, url(venue, "trademesh.admin.v1.Admin/GetStatus"), token=venue.token)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["venue"] == "sim" and status["state"] == "VENUE_STATE_RUNNING"
    assert {s["symbol"] for s in status["streams"]} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


async def test_buf_curl_without_the_token_is_unauthenticated(venue: Venue) -> None:
    result = await buf_curl(venue, url(venue, "trademesh.admin.v1.Admin/GetStatus"))
    assert result.returncode == UNAUTHENTICATED_EXIT, (result.returncode, result.stdout, result.stderr)
    assert json.loads(result.stdout or result.stderr)["code"] == "unauthenticated"


NEGATIVE_SIZE = {
    "symbol": "BTC/USDT",
    "side": "SIDE_BUY",
    "type": "ORDER_TYPE_LIMIT",
    "size": "-1",
    "price": "30000",
}


async def test_buf_curl_place_order_with_the_mesh_token_is_permission_denied(venue: Venue) -> None:
    result = await buf_curl(
        venue,
        "-d",
        json.dumps(NEGATIVE_SIZE),
        url(venue, "trademesh.tradeflow.v1.TradeFlow/PlaceOrder"),
        token=venue.token,
    )
    assert result.returncode == PERMISSION_DENIED_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "permission_denied"
    assert error["message"].startswith("PlaceOrder needs the trading credential (TRADEMESH_TRADE_TOKEN)")


async def test_buf_curl_place_order_with_a_negative_size_is_invalid_argument(venue: Venue) -> None:
    result = await buf_curl(
        venue,
        "-d",
        json.dumps(NEGATIVE_SIZE),
        url(venue, "trademesh.tradeflow.v1.TradeFlow/PlaceOrder"),
        token=venue.trade_token,
    )
    assert result.returncode == INVALID_ARGUMENT_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "invalid_argument"
    assert "size" in error["message"]
    assert [d["type"] for d in error["details"]] == ["google.rpc.BadRequest"]
