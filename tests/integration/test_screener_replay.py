"""The Screener on a live venue's replayed session of many symbols (issue 42), every part a real
process on a real Redis: `trademesh venue binanceusdm --replay` plays a session of 41 perpetuals
in Binance USD-M's wire format (tests/integration/usdm_session.py: no recorded capture holds more
than 10 symbols, and their 2021 event times are too old for any screen); ingest follows the
venue's trades, tickers (24h volume) and funding rates onto the bus, `trademesh bars` makes 1s
bars of the trades, and `trademesh screener` ranks the symbols by the two screens of
tests/integration/screens/ (filters on volume, spread and momentum; a funding rate by rank; 1s
momentum, volatility and depth by z-score).

Each result, over GetResults, StreamResults and the bus stream screens.<name>, equals the one
worked out from the session's frames and the screen file alone (tests/integration/screen_oracle.py):
the same symbols in the same order with the same scores and metrics, the same counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.gateway_support import (
    Gateway,
    Processes,
    at_once,
    both,
    grpcweb_call,
    key_taken,
    module_database,
    new_key,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.screen_oracle import Expected, Market, closed_bars, expected_result, read_session
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VENUE_ENV, Venue
from tests.integration.usdm_session import write_session
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.screener.v1 import screener_pb2_grpc as sc_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a replay venue: not in the fast tier
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

T = TypeVar("T")
VENUE = "binanceusdm"
SCREENER = "trademesh.screener.v1.Screener"
SCREENS = Path(__file__).with_name("screens")
CARRY, MOVERS = "usdm-carry", "usdm-movers"
# The venue streams what a screen reads (the session has no book and no candles).
CHANNELS = 'channels = ["trades", "tickers", "funding"]\n'
# What the session holds (usdm_session.PERPETUALS): 39 USDT perpetuals (and 2 USDC ones), of which
# 3 trade too little and 2 quote too wide; 2 have 3 trades and 1 none (too few bars for 5).
FILTERED = {"VET/USDT:USDT", "SAND/USDT:USDT", "MANA/USDT:USDT", "AXS/USDT:USDT", "GALA/USDT:USDT"}
FEW_BARS = {"CRV/USDT:USDT", "LDO/USDT:USDT", "DYDX/USDT:USDT"}
USDC = {"BTC/USDC:USDC", "ETH/USDC:USDC"}
TWINS = ("FIL/USDT:USDT", "FLOW/USDT:USDT")  # alike but for their names


def _seen(result: sc.ScreenResult) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """A result as the oracle writes one: its rows, and its counts."""
    rows = [(r.rank, r.symbol, r.score, {m.metric: float(m.value) for m in r.metrics}) for r in result.ranked]
    counts = {"universe": result.universe, "left_out": result.left_out, "filtered_out": result.filtered_out,
              "missing": dict(result.missing), "top_n": result.top_n}  # fmt: skip
    return rows, counts


async def _settled(read: Callable[[], Awaitable[T]], expected: object, timeout_s: float, what: str) -> T:
    """Reads until what `read` gives equals `expected`, or timeout_s passed: then the last read
    must equal it (the assertion shows how they differ)."""
    deadline = time.monotonic() + timeout_s
    while (got := await read()) != expected and time.monotonic() < deadline:  # noqa: ASYNC110 (polls)
        await asyncio.sleep(0.1)
    assert got == expected, f"{what}, after {timeout_s} s"
    return got


def _on_bus_expected(markets: dict[str, Market]) -> dict[str, Any]:
    """What ingest and the bars service put on the bus: every trade and funding rate of the
    session once, each symbol's closed 1s bars."""
    last = max(t for m in markets.values() for t, *_ in m.trades)
    bars = {symbol: len(closed_bars(m, last)) for symbol, m in markets.items() if m.trades}
    trades = sum(len(m.trades) for m in markets.values())
    return {"trades": trades, "funding": 2 * len(markets), "bars": bars}


async def _on_bus(client: Any) -> dict[str, Any]:
    events = {"trades": 0, "funding": 0}
    for channel in events:
        for _, fields in await client.xrange(f"md.{{{VENUE}}}.{channel}"):
            events[channel] += len(decode(fields).market.events)
    bars: dict[str, int] = {}
    for _, fields in await client.xrange(f"bars.{{{VENUE}}}.1s"):
        for bar in decode(fields).bars.bars:
            bars[bar.symbol] = bars.get(bar.symbol, 0) + 1
    return {**events, "bars": bars}


class _Mesh(Processes):
    """The test's processes (gateway_support.Processes), and the replay venue among them."""

    def replay(self, files: list[Path]) -> ServiceProcess:
        config = self.directory / f"{VENUE}.toml"
        config.write_text(CHANNELS)
        args = ["venue", VENUE, "--port", "0", "--metrics-port", "-1", "--config", str(config),
                "--replay", *map(str, files)]  # fmt: skip
        return self._start(VENUE, args, VENUE_ENV)[0]

    def unregistered(self, name: str, *args: str, redis_url: str) -> ServiceProcess:
        """A mesh service the gateway does not know of (bars, ingest: nothing asks for them here)."""
        argv = [name, "--port", "0", "--metrics-port", "-1", "--redis-url", redis_url, *args]
        return self._start(name, argv, {})[0]


async def _start(mesh: _Mesh, bus: str, files: list[Path]) -> tuple[Venue, Gateway, str]:
    """The gateway, a key of the `read` scope, the replay venue and the bars service at once; then
    the Screener and ingest on the venue (its subscriptions start the replay): the Screener, the
    gateway, the key."""
    found: list[Any] = await at_once(  # each start ends before a failed one's error is raised
        mesh.gateway,
        lambda: new_key(mesh.database_url, "screens", ["read"]),
        lambda: mesh.replay(files),
        lambda: mesh.unregistered("bars", redis_url=bus),
    )
    gateway, key, venue = cast(Gateway, found[0]), cast(str, found[1]), cast(ServiceProcess, found[2])
    follow = mesh.directory / "ingest.toml"
    follow.write_text(f'[[venues]]\nname = "{VENUE}"\naddress = "{venue.address}"\n{CHANNELS}')
    service, _ = await both(
        lambda: mesh.mesh_service(gateway, "screener", "--screens", str(SCREENS), redis_url=bus),
        lambda: mesh.unregistered("ingest", "--mesh-config", str(follow), "--funding-every-s", "0",
                                  redis_url=bus),
    )  # fmt: skip
    return Venue(service, mesh.log_path(service)), gateway, key


async def _result(stub: sc_grpc.ScreenerAsyncStub, name: str) -> sc.ScreenResult | None:
    got = await stub.GetResults(sc.GetResultsRequest(screen=name), timeout=CALL_TIMEOUT_S)
    return got.result if got.HasField("result") else None


async def test_the_screener_ranks_a_replayed_venues_many_symbols_as_the_session_states_them(
    redis_url: str, module_database: str, tmp_path: Path
) -> None:
    start_ms = (time.time_ns() // 10**9 - 30) * 1000  # the session's first second: half a minute ago
    files = write_session(tmp_path, start_ms)
    markets = read_session(files)
    expected = {name: expected_result(SCREENS / f"{name}.toml", markets) for name in (CARRY, MOVERS)}
    _check_the_session(markets, expected)
    mesh = _Mesh(tmp_path, module_database)
    service: Venue | None = None
    async with redis_db(redis_url) as bus:
        client: Any = aioredis.Redis.from_url(bus)
        try:
            service, gateway, key = await _start(mesh, bus, files)
            await _settled(lambda: _on_bus(client), _on_bus_expected(markets), 30, "the session on the bus")
            stub = sc_grpc.ScreenerStub(service.channel(TEST_TOKEN))
            for name, result in expected.items():

                async def answered(name: str = name) -> Any:
                    got = await _result(stub, name)
                    return None if got is None else _seen(got)

                await _settled(answered, (result.ranked, result.counts), 20, f"{name}'s result (GetResults)")
            await _check_stream(stub, expected)
            await _check_published(client, expected)
            for name in expected:
                _check_times(await _result(stub, name), start_ms)
            await _check_through_the_gateway(gateway, key, expected)
        finally:
            await client.aclose()
            if service is not None:
                await service.close_channels()
            await mesh.stop_all()


def _check_the_session(markets: dict[str, Market], expected: dict[str, Expected]) -> None:
    """The oracle's results are the session's as designed (usdm_session.PERPETUALS), so they could
    not pass by agreeing with a wrong Screener on nothing: every USDT perpetual in the universe,
    the filtered and the short ones out, the two alike next to each other."""
    assert len(markets) == 41 and set(markets) >= USDC
    carry, movers = expected[CARRY], expected[MOVERS]
    assert carry.counts == {"universe": 39, "left_out": 0, "filtered_out": 5, "top_n": 8,
                            "missing": {"funding_rate": 0, "spread_bps": 0, "volume_24h": 0}}  # fmt: skip
    assert len(carry.ranked) == 34 and not {symbol for _, symbol, *_ in carry.ranked} & (FILTERED | USDC)
    assert (movers.counts["universe"], movers.counts["left_out"]) == (39, 3)
    assert movers.counts["missing"] == {"momentum": 3, "spread_bps": 0, "top_depth": 0, "volatility": 3,
                                        "volume_24h": 0}  # fmt: skip
    assert movers.counts["filtered_out"] > 5 and len(movers.ranked) >= movers.counts["top_n"]
    assert not {symbol for _, symbol, *_ in movers.ranked} & (FILTERED | FEW_BARS | USDC)
    for result in (carry, movers):  # the two alike score alike, and rank by symbol
        [(first, fil), (second, flow)] = [(r[0], r[2]) for r in result.ranked if r[1] in TWINS]
        assert second == first + 1 and fil.expected == flow.expected


async def _check_stream(stub: sc_grpc.ScreenerAsyncStub, expected: dict[str, Expected]) -> None:
    """StreamResults gives each screen's latest result first, then each new evaluation: the same."""
    call: Any = stub.StreamResults(sc.StreamResultsRequest(screens=list(expected)))
    try:
        seen: dict[str, list[Any]] = {name: [] for name in expected}
        while min(len(results) for results in seen.values()) < 2:
            message: sc.StreamResultsResponse = await asyncio.wait_for(call.read(), 10)
            seen[message.result.screen].append(message.result)
    finally:
        call.cancel()
    for name, results in seen.items():
        assert [_seen(r) for r in results] == [(expected[name].ranked, expected[name].counts)] * len(results)
        assert results[-1].computed_ns > results[0].computed_ns


async def _check_published(client: Any, expected: dict[str, Expected]) -> None:
    for name, result in expected.items():
        [(_, fields)] = await client.xrevrange(f"screens.{name}", count=1)
        assert _seen(decode(fields).screen_result) == (result.ranked, result.counts)


def _check_times(result: sc.ScreenResult | None, start_ms: int) -> None:
    """Every ranked symbol's inputs are of the session's time (the venue stamps what the exchange
    says), not of when they were read."""
    assert result is not None
    session = range(start_ms * 1_000_000, (start_ms + 12_000) * 1_000_000)
    assert all(r.as_of_ns in session for r in result.ranked)
    assert result.oldest_input_ns in session and result.newest_input_ns in session


async def _check_through_the_gateway(gateway: Gateway, key: str, expected: dict[str, Expected]) -> None:
    """GetResults over gRPC-web through the gateway, with a key of the `read` scope: the same (once
    the gateway has the key and the Screener's registration)."""
    await key_taken(gateway, key)
    for name, result in expected.items():
        asked = sc.GetResultsRequest(screen=name).SerializeToString()

        async def answered(asked: bytes = asked) -> Any:
            answer = await grpcweb_call(gateway, f"{SCREENER}/GetResults", asked, key=key)
            if answer.code != grpc.StatusCode.OK.value[0]:
                return answer.code, answer.message
            return _seen(sc.GetResultsResponse.FromString(answer.messages[0]).result)

        await _settled(answered, (result.ranked, result.counts), 20, f"{name}'s result through the gateway")
