"""The live recording that issue 18's parity tests (tests/integration/test_chain_parity.py)
backtest: one mesh on the sim, recorded once for every test of the module.

The mesh: gateway, sim, ingest, recorder, bars, the bridge, the advisor (LLM off,
`ADVISOR_TEST_CONFIG`, `--timeframe 1s --max-notional-share 0.008`: `trademesh up`'s cap, on 1s
bars so that a short recording has decisions; its backtest is told the same timeframe),
the inspector (`--deadman-ttl-ms 0`) and a watcher: a detector (`--instance watcher`) whose
one strategy, trend's patches on the demo markets with a threshold no score reaches, never
signals. The advisor and the inspector follow the markets of the detectors' active patches
(their books as of each signal's time); without the watcher they would begin with the
detector's, a second or so after its first event, and a signal of its first second would be
decided on the latest look (docs/backtest.md, "A market's first signal"), not as of its time
as the backtest decides it. Once the recorder holds `WARM_BARS` one-second bars
of each symbol, the detector runs the demo strategies with `--hold-ms 3000` for `LIVE_S` (and
on, up to `LIVE_MAX_S`, until it has made `MIN_SIGNALS` signals the window keeps): its
signals go to the advisor, its intents to the inspector, whose orders trade on the sim. Then
the detector stops, the last signals are decided, and the advisor and inspector stop (they
would make something of the next orders: a fill of an order not theirs moves the inspector's
positions and fees), and orders are placed by hand on a symbol no demo strategy trades
(`TRADED`, `ORDER_PLAN`): marketable and resting, both sides, a stop that waits. The hand
orders come after the chain's window so that they move neither its account nor its markets.

Everything the tests compare is read back once: the bus's signals and decisions, the
detector's log (where a backtest of its session starts), the sim's candles of the warm-up and
the live window.

The tests run on each session shipped in fixtures/chain-parity* (tests/integration/chain_fixture:
such recordings, each restored into a scratch database, no mesh running): what a live session on
a loaded machine gives is not the tests' to gate on. `TRADEMESH_CHAIN_LIVE=1` records a session
now instead (bench/chain_parity.py does, and reports how much of it the backtest reproduces);
`TRADEMESH_CHAIN_LEVELS_ATR` and `TRADEMESH_CHAIN_TRADES_PER_S` record it in the race variant
(levels near the market, several takers a step: `LEVELS_ATR`, `TRADES_PER_S`). A recording can
be kept and the tests run on it again, without a mesh (to study a session the tests failed on,
or to ship it as a fixture): `TRADEMESH_CHAIN_KEEP=<directory>` keeps its database (not
dropped) and writes the rest there (`chain.pickle`, the services' configs and logs);
`TRADEMESH_CHAIN_FROM=<that directory>` runs the tests on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import re
import shutil
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from tests.integration.gateway_support import Processes
from tests.integration.mesh import (
    ADVISOR_TEST_CONFIG,
    WARM_HISTORY_S,
    bus_signals,
    redis_db,
    stream_entries,
    until_signals,
    venue_link,
)
from tests.integration.postgres_server import new_database
from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN, until, with_test_step
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.names import DECISIONS
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = [
    "FIXTURES",
    "HOLD_MS",
    "LIVE_MAX_S",
    "LIVE_S",
    "MIN_SIGNALS",
    "ORDERS",
    "ORDER_PLAN",
    "SYMBOLS",
    "TRADED",
    "WARM_BARS",
    "WARM_WINDOW_S",
    "Bar",
    "Chain",
    "S",
    "chain",
    "fetchval",
]

S = 1_000_000_000
HOLD_MS = 3000  # longer than the sim's stream lags here, even on a loaded machine
LIVE_S = 60
# ... and on, up to LIVE_MAX_S, until the detector has made MIN_SIGNALS signals the window keeps
# (the sim's market is random: a quiet minute gives the tests too little to compare).
LIVE_MAX_S = 150
MIN_SIGNALS = 3
WARM_BARS = 40  # the examples' warm-ups (trend 30 bars of 1s, mean reversion 35) and a few more
SYMBOLS = ("BTC/USDT", "ETH/USDT")
MAX_NOTIONAL_SHARE = "0.008"  # as `trademesh up` runs the advisor
DECIDED_S = 3  # the last signals decided and their orders placed after the detector stops
TREND = Path("trademesh/core/detector/strategies/trend.toml")

# The orders placed by hand after the chain's window, on a symbol no demo strategy trades (their
# signals' market is not ours to move), one every ORDER_EVERY_S: buys, then (their resting ones
# cancelled) sells, each side in turn (type, time in force, limit price as a ratio of the last
# price, size): marketable ones (market, and limits through the book: they sweep a few levels)
# and resting ones (limits a little off the book: the market may come to them), and a stop that
# waits. Our takers and our resting orders are on one side at a time, so ours never meet each other.
TRADED = "SOL/USDT"
TICK = Decimal("0.001")  # the sim's SOL/USDT
_MKT, _LMT, _STOP = tf.ORDER_TYPE_MARKET, tf.ORDER_TYPE_LIMIT, tf.ORDER_TYPE_STOP_MARKET
_GTC, _IOC = tf.TIME_IN_FORCE_GTC, tf.TIME_IN_FORCE_IOC
Planned = tuple[tf.OrderType.ValueType, tf.TimeInForce.ValueType, str, str]
ORDER_PLAN: tuple[Planned, ...] = (
    (_MKT, _IOC, "", "60"),
    (_LMT, _IOC, "0.0005", "100"),  # through the book by this share of the price
    (_LMT, _GTC, "-0.0002", "5"),  # off the book
    (_STOP, _IOC, "0.01", "5"),  # a stop far beyond the price: it waits, and is cancelled
)
ORDER_EVERY_S = 2.5
ORDERS_PER_SIDE = 8
ORDERS = 2 * ORDERS_PER_SIDE

Bar = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]  # open time, OHLC, volume, trades
WARM_WINDOW_S = 37  # the warm-up's 1s bars: 35 at most, and the 2 more the detector asks for
KEEP = "TRADEMESH_CHAIN_KEEP"  # a directory: the recording kept there (the module docstring's)
FROM = "TRADEMESH_CHAIN_FROM"  # a kept recording's directory: the tests run on it
LIVE = "TRADEMESH_CHAIN_LIVE"  # set: a session recorded now, not the shipped one
# Set ("<stop>,<target>", numbers of ATRs): the advisor's stops and targets that far from the
# entry (its `stop_atr` and `target_atr`, 1.5 and 2.5 by default). Levels close to the market
# fill and trigger while the inspector resizes or cancels them: the races the race sessions
# caught (tests/integration/chain_races.py).
LEVELS_ATR = "TRADEMESH_CHAIN_LEVELS_ATR"
# Set (trades a second, 20 by default): the sim's takers of every symbol that often. Over 20
# (one taker a 50 ms step), a step has several, of either side: a buy meeting our target and a
# sell through our stop microseconds apart, the inspector acting on the first while the second
# is on its way to it.
TRADES_PER_S = "TRADEMESH_CHAIN_TRADES_PER_S"
_PICKLE = "chain.pickle"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"  # the shipped sessions: chain-parity*
# Shipped sessions the tests no longer run on: recorded with a sim whose matching has changed
# since, so the backtest (today's engine) no longer makes what their venue did. Their journals
# stay for the race detector's tests (tests/unit/test_chain_races.py); each README says why.
RETIRED = frozenset({"chain-parity-target"})


@dataclasses.dataclass
class Chain:
    database: str
    sim_config: Path  # the sim's
    advisor_config: Path
    signals: list[sig.Signal]  # the live detector's
    decisions: list[am.Decision]  # the live advisor's, each with its signal
    warmed_ns: int  # the detector's patches warmed from the bars closed by this time
    started_ns: int  # the first event time it fed
    cutoff_ns: int  # signals up to this time are compared: the detector had all their data
    warmed_live: set[str]  # the patches the detector warmed from live data (no history for them)
    log: str  # the detector's
    candles: dict[str, list[Bar]]  # the venue's 1s candles of the warm-up and the window, per symbol
    placed: list[str]  # the client order ids of the orders placed by hand
    orders_start_ns: int  # before the first of them (the sim's clock is this machine's)
    orders_end_ns: int  # the recorder holds the market up to here: the last order's cancel and more
    journal: list[bytes] = dataclasses.field(default_factory=list)  # the inspector's, its entries
    source: str = ""  # the shipped session's directory under fixtures/ ("": recorded now, or kept)


async def fetchval(database: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def _bars_recorded(database: str) -> int:
    sql = "SELECT min(n) FROM (SELECT count(*) AS n FROM bars WHERE timeframe = '1s' GROUP BY symbol) AS per"
    try:
        return int(await fetchval(database, sql) or 0)
    except asyncpg.UndefinedTableError:
        return 0


def _logged(text: str, what: str) -> int:
    found = re.search(rf"{what} (\d+)", text)
    assert found is not None, f"the detector's log says {what!r}: {text[-2000:]}"
    return int(found.group(1))


async def _venue_candles(address: str, warmed_ns: int, end_ns: int) -> dict[str, list[Bar]]:
    """The sim's closed 1s candles from the warm-up window (what the live detector warmed from)
    to `end_ns`."""
    channel = grpc.aio.insecure_channel(address)
    metadata = (("authorization", f"Bearer {TEST_TOKEN}"),)
    found: dict[str, list[Bar]] = {}
    try:
        for symbol in SYMBOLS:
            request = md.GetCandlesRequest(
                symbol=symbol,
                timeframe=common.TIMEFRAME_1_SECOND,
                start_ns=warmed_ns - WARM_WINDOW_S * S,
                limit=1_000,
            )
            reply = await md_grpc.MarketDataStub(channel).GetCandles(request, metadata=metadata, timeout=10)
            found[symbol] = [_candle(c) for c in reply.candles if c.closed and c.open_time_ns + S <= end_ns]
    finally:
        await channel.close()
    return found


def _candle(c: md.Candle) -> Bar:
    d = Decimal
    return (c.open_time_ns, d(c.open), d(c.high), d(c.low), d(c.close), d(c.volume), c.trade_count)


async def _trade(address: str, placed: list[str]) -> None:
    """Place the planned orders on the sim in turn, as a trading client does; their ids into `placed`."""
    channel = grpc.aio.insecure_channel(address)
    metadata = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
    trading, market = tf_grpc.TradeFlowStub(channel), md_grpc.MarketDataStub(channel)
    try:
        for index in range(ORDERS):
            await asyncio.sleep(ORDER_EVERY_S)
            sign = 1 if index < ORDERS_PER_SIDE else -1
            if index == ORDERS_PER_SIDE:
                await _cancel_all(address)
            kind, tif, share, size = ORDER_PLAN[index % len(ORDER_PLAN)]
            request = tf.PlaceOrderRequest(
                symbol=TRADED, side=common.SIDE_BUY if sign > 0 else common.SIDE_SELL, type=kind, size=size,
                time_in_force=tif, client_order_id=f"parity-{index}",
            )  # fmt: skip
            if share:
                candles = await market.GetCandles(
                    md.GetCandlesRequest(symbol=TRADED, timeframe=common.TIMEFRAME_1_SECOND, limit=1),
                    metadata=metadata,
                    timeout=10,
                )
                price = str((Decimal(candles.candles[-1].close) * (1 + sign * Decimal(share))).quantize(TICK))
                if kind == _STOP:
                    request.trigger_price = price
                else:
                    request.price = price
            await trading.PlaceOrder(request, metadata=metadata, timeout=10)
            placed.append(request.client_order_id)
    finally:
        await channel.close()


async def _cancel_all(address: str) -> None:
    channel = grpc.aio.insecure_channel(address)
    metadata = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
    try:
        await tf_grpc.TradeFlowStub(channel).CancelAllOrders(
            tf.CancelAllOrdersRequest(symbol=TRADED), metadata=metadata, timeout=10
        )
    finally:
        await channel.close()


async def _inspector_journal(bus_url: str) -> list[bytes]:
    """The live inspector's journal (every input of its core, in order:
    trademesh.core.inspector.input_journal), each entry serialised: replayed through the core
    (trademesh.core.inspector.driver) it shows what the live inspector did on each input."""
    return [fields[FIELD] for fields in await stream_entries(bus_url, "inspector.journal.*")]


async def _bus_decisions(bus_url: str) -> list[am.Decision]:
    return [
        d for fields in await stream_entries(bus_url, DECISIONS) for d in decode(fields).decisions.decisions
    ]


def _sim_config(trades_per_s: str | None) -> str:
    config = with_test_step(f"history_s = {WARM_HISTORY_S}\n")
    if not trades_per_s:
        return config
    taken = "trades_per_s = 20.0"
    assert config.count(taken) == len({*SYMBOLS, TRADED}), "the test symbols trade 20 times a second"
    return config.replace(taken, f"trades_per_s = {float(trades_per_s)}")


def _advisor_config(levels_atr: str | None) -> str:
    if not levels_atr:
        return ADVISOR_TEST_CONFIG
    stop, target = levels_atr.split(",")
    levels = f'stop_atr = "{stop}"\ntarget_atr = "{target}"\n'
    config = ADVISOR_TEST_CONFIG.replace("[validation]\n", "[validation]\n" + levels, 1)
    assert levels in config, "ADVISOR_TEST_CONFIG has a [validation] table"
    return config


def _watch_strategy(directory: Path) -> Path:
    """Trend's patches (its markets, its warm-up) under another id, with a threshold no score
    reaches (its score is a count of three rules): they stay active and never signal."""
    watch = TREND.read_text().replace('id = "trend"', 'id = "watch"', 1)
    watch = watch.replace("threshold = 3.0", "threshold = 1000.0", 1)
    assert watch.count('"watch"') == 1 and "threshold = 1000.0" in watch, "trend.toml as expected"
    path = directory / "watch.toml"
    path.write_text(watch)
    return path


async def _later_trades(database: str, after: int) -> int | None:
    sql = "SELECT count(*) FROM trades WHERE ts_event_ns > $1"
    return int(await fetchval(database, sql, after)) or None


async def _journal_recorded(database: str, entries: int) -> int | None:
    """The recorder holds the inspector's journal whole (the backtest reads when it heard)."""
    count = int(await fetchval(database, "SELECT count(*) FROM inspector_journal"))
    return count if count >= entries else None


def _sessions() -> list[str]:
    """The sessions the module's tests run on: every shipped one but the retired (its
    directory's name), or the one kept or recorded now."""
    if os.environ.get(FROM) or os.environ.get(LIVE):
        return ["recorded"]
    return sorted(p.name for p in FIXTURES.glob("chain-parity*") if p.is_dir() and p.name not in RETIRED)


@pytest.fixture(scope="module", params=_sessions())
async def chain(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_url: str,
) -> AsyncIterator[Chain]:
    """Each shipped session (fixtures/chain-parity*, restored into a scratch database), a kept
    one, or one recorded now (`TRADEMESH_CHAIN_LIVE=1`: the module docstring's)."""
    kept = os.environ.get(FROM)
    if kept:
        yield pickle.loads((Path(kept) / _PICKLE).read_bytes())
        return
    if not os.environ.get(LIVE):
        from tests.integration.chain_fixture import restore

        async with new_database(database_url, "chain") as database:
            yield await restore(database, FIXTURES / request.param)
        return
    keep = os.environ.get(KEEP)
    async with new_database(database_url, "chain", keep=bool(keep)) as database, redis_db(redis_url) as bus:
        async for recorded in _recorded(tmp_path_factory.mktemp("chain"), database, bus):
            if keep:
                recorded = _kept(recorded, Path(keep))
            yield recorded


def _kept(recorded: Chain, directory: Path) -> Chain:
    """The recording's files copied to `directory`, and it pickled there, pointing at them."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in recorded.sim_config.parent.iterdir():
        if path.is_file():
            shutil.copy(path, directory / path.name)
    moved = dataclasses.replace(
        recorded,
        sim_config=directory / recorded.sim_config.name,
        advisor_config=directory / recorded.advisor_config.name,
    )
    (directory / _PICKLE).write_bytes(pickle.dumps(moved))
    return moved


async def _recorded(tmp_path: Path, database: str, bus: str) -> AsyncIterator[Chain]:
    """The session recorded, its services up until the caller is done with it."""
    advisor_config = tmp_path / "advisor.toml"
    advisor_config.write_text(_advisor_config(os.environ.get(LEVELS_ATR)))
    processes = Processes(tmp_path, database)
    try:
        gateway = processes.gateway()
        sim = processes.sim(gateway, _sim_config(os.environ.get(TRADES_PER_S)))
        venue = ("--venue", f"sim={sim.address}")
        processes.mesh_service(gateway, "recorder", "--database-url", database, redis_url=bus)
        processes.mesh_service(gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus)
        processes.mesh_service(gateway, "bars", *venue_link("bars", sim.address), redis_url=bus)
        processes.mesh_service(gateway, "bridge", redis_url=bus)
        advisor = processes.mesh_service(
            gateway, "advisor", *venue, "--database-url", database, "--config", str(advisor_config),
            "--timeframe", "1s", "--max-notional-share", MAX_NOTIONAL_SHARE,
            "--model-dir", str(tmp_path / "models"), redis_url=bus,
        )  # fmt: skip
        inspector = processes.mesh_service(
            gateway, "inspector", *venue, "--deadman-ttl-ms", "0", redis_url=bus
        )
        watch = ("--strategy", str(_watch_strategy(tmp_path)), "--instance", "watcher")
        watcher = processes.mesh_service(
            gateway, "detector", *watch, *venue, "--database-url", database, redis_url=bus
        )

        async def warm() -> int | None:
            recorded = await _bars_recorded(database)
            return recorded if recorded >= WARM_BARS else None

        await until(warm, 120, interval_s=1.0, what=f"{WARM_BARS} recorded 1s bars of each symbol")
        args = (*venue, "--database-url", database, "--hold-ms", str(HOLD_MS))
        detector = processes.mesh_service(gateway, "detector", *args, redis_url=bus)
        detector_log = tmp_path / f"detector-{len(processes.started) - 1}.log"  # Processes' naming
        await asyncio.sleep(LIVE_S)
        await until_signals(bus, MIN_SIGNALS, HOLD_MS * 1_000_000 + 2 * S, LIVE_MAX_S - LIVE_S)
        await processes.stop(detector)
        stopped = time.time_ns()
        await asyncio.sleep(DECIDED_S)
        for done in (advisor, inspector, watcher):
            await processes.stop(done)
        placed: list[str] = []
        orders_start = time.time_ns()
        await _trade(sim.address, placed)
        await _cancel_all(sim.address)  # the resting orders left: their cancels are recorded too
        orders_end = time.time_ns() + S
        # Everything is recorded once the recorder holds a later trade.
        await until(lambda: _later_trades(database, orders_end), 30, what="the recorder caught up")
        journal = await _inspector_journal(bus)
        await until(lambda: _journal_recorded(database, len(journal)), 30, what="the journal recorded")
        log = await asyncio.to_thread(detector_log.read_text)
        warmed_ns = _logged(log, "candles closed by")
        yield Chain(
            database=database,
            sim_config=(await asyncio.to_thread(lambda: list(tmp_path.glob("sim-*.toml"))))[0],
            advisor_config=advisor_config,
            signals=await bus_signals(bus),
            decisions=await _bus_decisions(bus),
            warmed_ns=warmed_ns,
            started_ns=_logged(log, "market data from"),
            cutoff_ns=stopped - HOLD_MS * 1_000_000 - 2 * S,
            warmed_live=set(re.findall(r"detector: (\S+) warms from live data", log)),
            log=log,
            candles=await _venue_candles(sim.address, warmed_ns, stopped),
            placed=placed,
            orders_start_ns=orders_start,
            orders_end_ns=orders_end,
            journal=journal,
        )
    finally:
        await processes.stop_all()
