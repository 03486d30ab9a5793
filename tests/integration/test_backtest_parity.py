"""Issue 18's parity test: the demo strategies run live on the sim in a real mesh (sim, ingest,
recorder, bars, detector with a hold), then the backtest replays the recorded window through
the same cores: the signals are identical, ids aside (the same times, symbols, directions,
convictions, scores and rules). Orders placed on the sim during the live window (marketable and
resting, both sides) and recorded, sent again to the backtest's replayed venue at the times the
live venue received them, fill as they filled live (the same prices, sizes, fees and
liquidity, the same end states).

The backtest starts where the live detector did, from its log: its patches warmed from the
bars closed by the time it warmed ("candles closed by"), its market data from the first event
time it fed ("market data from"); docs/backtest.md, "Parity with live"."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from core.backtest.assemble import build, recorded_history
from core.backtest.config import BacktestConfig
from core.backtest.detect import no_timer
from core.backtest.market import ReplayedMarket
from core.backtest.recorded_orders import Outcome, load_recorded_orders, refill
from core.backtest.session import drive
from core.backtest.source import RecordedSource
from core.detector.config import example_strategies
from core.detector.convert import signal_to_pb
from core.detector.engine.catalog import Catalog
from core.detector.engine.engine import Engine, EngineConfig
from core.detector.engine.outputs import EmittedSignal, Evaluation
from core.detector.history import patch_history
from core.detector.runner import Runner
from core.detector.strategy_file import build_patches, load_strategy
from core.errors import FailedPrecondition
from core.model import Liquidity, OrderStatus, OrderType
from tests.integration.gateway_support import Processes
from tests.integration.mesh import WARM_HISTORY_S, bus_signals, redis_db, until_signals, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc
from venues.sim.config import load_config as load_sim_config
from venues.sim.order_manager import FeeSchedule
from venues.sim.symbols import instruments as sim_instruments

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures

S = 1_000_000_000
HOLD_MS = 3000  # longer than the sim's stream lags here, even on a loaded machine
LIVE_S = 60
# ... and on, up to LIVE_MAX_S, until the detector has made MIN_SIGNALS signals the window keeps
# (tests.integration.mesh.until_signals).
LIVE_MAX_S = 150
MIN_SIGNALS = 3
WARM_BARS = 40  # the examples' warm-ups (trend 30 bars of 1s, mean reversion 35) and a few more
SYMBOLS = ("BTC/USDT", "ETH/USDT")


async def _fetchval(database: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def _bars_recorded(database: str) -> int:
    sql = "SELECT min(n) FROM (SELECT count(*) AS n FROM bars WHERE timeframe = '1s' GROUP BY symbol) AS per"
    try:
        return int(await _fetchval(database, sql) or 0)
    except asyncpg.UndefinedTableError:
        return 0


def _logged(log: Path, what: str) -> int:
    found = re.search(rf"{what} (\d+)", log.read_text())
    assert found is not None, f"the detector's log says {what!r}: {log.read_text()[-2000:]}"
    return int(found.group(1))


def _warmed_live(log: Path) -> set[str]:
    return set(re.findall(r"detector: (\S+) warms from live data", log.read_text()))


@dataclasses.dataclass
class Session:
    database: str
    sim_config: Path  # the sim's
    signals: list[sig.Signal]
    warmed_ns: int  # the detector's patches warmed from the bars closed by this time
    started_ns: int  # the first event time it fed
    cutoff_ns: int  # signals up to this time are compared: the detector had all their data
    warmed_live: set[str]  # the patches the detector warmed from live data (no history for them)
    log: str  # the detector's
    candles: dict[str, list[Bar]]  # the venue's 1s candles of the warm-up, per symbol
    placed: list[str]  # the client order ids of the orders placed in the live window
    orders_start_ns: int  # before the first of them (the sim's clock is this machine's)
    orders_end_ns: int  # the recorder holds the market up to here: the last order's cancel and more


Bar = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]  # open time, OHLC, volume, trades
Count = tuple[int, Decimal]  # trades in a second, and their volume
WARM_WINDOW_S = 37  # the warm-up's 1s bars: 35 at most, and the 2 more the detector asks for


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


def _row(row: asyncpg.Record) -> Bar:
    return (row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def _recorded_bars(database: str, warmed_ns: int) -> dict[str, list[Bar]]:
    sql = (
        "SELECT open_time_ns, open, high, low, close, volume, trade_count FROM bars WHERE symbol = $1 "
        "AND timeframe = '1s' AND open_time_ns >= $2 AND open_time_ns + $3 <= $4 ORDER BY open_time_ns"
    )
    connection = await asyncpg.connect(database)
    try:
        return {
            symbol: [
                _row(row)
                for row in await connection.fetch(sql, symbol, warmed_ns - WARM_WINDOW_S * S, S, warmed_ns)
            ]
            for symbol in SYMBOLS
        }
    finally:
        await connection.close()


async def _recorded_trades(database: str, after_ns: int, end_ns: int) -> dict[str, dict[int, Count]]:
    """The recorded trades per symbol and second: (count, volume)."""
    sql = (
        "SELECT ts_event_ns / $3 * $3 AS at, count(*), sum(size) FROM trades WHERE symbol = $1 "
        "AND ts_event_ns >= $2 AND ts_event_ns < $4 GROUP BY at"
    )
    connection = await asyncpg.connect(database)
    try:
        found: dict[str, dict[int, Count]] = {}
        for symbol in SYMBOLS:
            rows = await connection.fetch(sql, symbol, after_ns, S, end_ns)
            found[symbol] = {row[0]: (row[1], row[2]) for row in rows}
        return found
    finally:
        await connection.close()


def _trade_differences(venue: dict[str, list[Bar]], recorded: dict[str, dict[int, Count]]) -> list[str]:
    lines = []
    for symbol in SYMBOLS:
        theirs: dict[int, Count] = {b[0]: (b[6], b[5]) for b in venue[symbol]}
        for at in sorted(set(theirs) | set(recorded[symbol])):
            if theirs.get(at) != recorded[symbol].get(at):
                lines.append(f"{symbol} {at}: venue {theirs.get(at)} recorded {recorded[symbol].get(at)}")
    return lines


def _bar_differences(venue: dict[str, list[Bar]], recorded: dict[str, list[Bar]]) -> list[str]:
    lines = []
    for symbol in SYMBOLS:
        theirs, ours = {b[0]: b for b in venue[symbol]}, {b[0]: b for b in recorded[symbol]}
        for at in sorted(set(theirs) | set(ours)):
            if theirs.get(at) != ours.get(at):
                lines.append(f"{symbol} {at}: venue {theirs.get(at)} recorded {ours.get(at)}")
    return lines


# The orders placed in the live window, on a symbol no demo strategy trades (their signals' market
# is not ours to move), one every ORDER_EVERY_S: buys, then (their resting ones cancelled) sells,
# each side in turn (type, time in force, limit price as a ratio of the last price, size):
# marketable ones (market, and limits through the book: they sweep a few levels) and resting ones
# (limits a little off the book: the market may come to them), and a stop that waits. Our takers
# and our resting orders are on one side at a time, so ours never meet each other.
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
ORDERS = 2 * ORDERS_PER_SIDE  # 40 s of the live window's 60


async def _trade(address: str, placed: list[str]) -> None:
    """Place the orders on the sim in turn, as a trading client does; their ids into `placed`."""
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


@pytest.fixture(scope="module")
async def session(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Session]:
    tmp_path = tmp_path_factory.mktemp("parity")
    async with new_database(database_url, "parity") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            processes.mesh_service(gateway, "recorder", "--database-url", database, redis_url=bus)
            processes.mesh_service(gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus)
            processes.mesh_service(gateway, "bars", *venue_link("bars", sim.address), redis_url=bus)

            async def warm() -> int | None:
                recorded = await _bars_recorded(database)
                return recorded if recorded >= WARM_BARS else None

            await until(warm, 120, interval_s=1.0, what=f"{WARM_BARS} recorded 1s bars of each symbol")
            args = ("--venue", f"sim={sim.address}", "--database-url", database, "--hold-ms", str(HOLD_MS))
            detector = processes.mesh_service(gateway, "detector", *args, redis_url=bus)
            placed: list[str] = []
            orders_start = time.time_ns()
            trading = asyncio.create_task(_trade(sim.address, placed))
            await asyncio.sleep(LIVE_S)
            await trading
            await until_signals(bus, MIN_SIGNALS, HOLD_MS * 1_000_000 + 2 * S, LIVE_MAX_S - LIVE_S)
            await processes.stop(detector)
            stopped = time.time_ns()
            await _cancel_all(sim.address)  # the resting orders left: their cancels are recorded too
            cancelled = time.time_ns()
            log = await asyncio.to_thread(lambda: next(tmp_path.glob("detector-*.log")))
            warmed_ns = _logged(log, "candles closed by")
            # Everything the detector saw is recorded once the recorder holds a later trade.
            sql = "SELECT count(*) FROM trades WHERE ts_event_ns > $1"
            orders_end = cancelled + S
            await until(lambda: _later_trades(database, sql, orders_end), 30, what="the recorder caught up")
            yield Session(
                database,
                next(tmp_path.glob("sim-*.toml")),
                await bus_signals(bus),
                warmed_ns,
                _logged(log, "market data from"),
                stopped - HOLD_MS * 1_000_000 - 2 * S,
                _warmed_live(log),
                await asyncio.to_thread(log.read_text),
                await _venue_candles(sim.address, warmed_ns, stopped),
                placed,
                orders_start,
                orders_end,
            )
        finally:
            await processes.stop_all()


async def _later_trades(database: str, sql: str, after: int) -> int | None:
    return int(await _fetchval(database, sql, after)) or None


async def _runner_on_recorded(session: Session, history: list[tuple[str, Any]]) -> list[sig.Signal]:
    """The live detector's runner (its hold, its stepping) handed the recorded events in time
    order, warmed as the detector warmed: equal to the backtest's signals unless the two step
    differently. Beside the live signals it tells where a difference comes from: the stepping,
    or the data live saw."""
    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    emitted: list[EmittedSignal] = []

    async def emit(evaluation: Evaluation) -> None:
        emitted.extend(evaluation.signals)

    wall = [session.started_ns]
    runner = Runner(engine, emit, clock=lambda: wall[0], hold_ns=HOLD_MS * 1_000_000)
    for path in example_strategies():
        for patch in build_patches(engine, load_strategy(path, Catalog.builtin()), session.warmed_ns):
            engine.warm(patch.id, patch_history(engine, patch.id, history, session.warmed_ns))
            try:
                patch.activate(session.warmed_ns)
            except FailedPrecondition:
                runner.warming.add(patch.id)
    end = session.cutoff_ns + S
    source = RecordedSource(session.database, "sim", list(SYMBOLS), session.started_ns, end)
    async for recorded in source:
        if isinstance(recorded.message, md.MarketEvent):
            wall[0] = max(wall[0], recorded.message.ts_event_ns)
            runner.deliver("sim", [recorded.message], wall[0])
            await runner.release(wall[0] - HOLD_MS * 1_000_000)
    wall[0] = end
    await runner.release(end)
    return [signal_to_pb(s) for s in emitted]


async def _backtested(session: Session) -> tuple[list[sig.Signal], list[tuple[str, Any]]]:
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=session.started_ns,
        end_ns=session.cutoff_ns + S,
        database_url=session.database,
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=session.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, session.warmed_ns)  # the live detector's cut
    assert set(backtest.detect.warming) == session.warmed_live, "the same patches start warm"
    symbols = backtest.symbols
    source = RecordedSource(config.database_url, config.venue, symbols, config.start_ns, config.end_ns)

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    tape = await drive(backtest, events())
    return list(tape.signals), history


def _compared(signals: list[sig.Signal], cutoff_ns: int) -> list[sig.Signal]:
    kept = []
    for signal in signals:
        if signal.ts_signal_ns <= cutoff_ns:
            copy = sig.Signal()
            copy.CopyFrom(signal)
            copy.signal_id = ""
            kept.append(copy)
    return sorted(kept, key=lambda s: (s.ts_signal_ns, s.strategy_id, s.symbol))


async def test_a_backtest_of_the_recorded_window_gives_the_live_signals(session: Session) -> None:
    assert "later than the hold" not in session.log, "no event came later than the hold"
    warm_candles = {
        s: [b for b in bars if b[0] + S <= session.warmed_ns] for s, bars in session.candles.items()
    }
    differences = _bar_differences(warm_candles, await _recorded_bars(session.database, session.warmed_ns))
    assert not differences, "the recorded warm-up bars are the venue's candles:\n" + "\n".join(differences)
    # The trades of the live window, as the venue counted them and as they were recorded.
    first = session.started_ns - session.started_ns % S + S  # the first whole second of live data
    last = session.cutoff_ns - session.cutoff_ns % S
    live_candles = {s: [b for b in bars if first <= b[0] < last] for s, bars in session.candles.items()}
    trades = _trade_differences(live_candles, await _recorded_trades(session.database, first, last))
    assert not trades, "the recorded trades are the venue's:\n" + "\n".join(trades)
    live = _compared(session.signals, session.cutoff_ns)
    backtested, history = await _backtested(session)
    replayed = _compared(backtested, session.cutoff_ns)
    stepped = _compared(await _runner_on_recorded(session, history), session.cutoff_ns)
    assert [_line(s) for s in stepped] == [_line(s) for s in replayed], "the runner steps as the backtest"

    assert len(live) >= MIN_SIGNALS, f"the demo strategies signal within {LIVE_MAX_S} s: {len(live)}"
    assert session.warmed_ns < session.started_ns < session.cutoff_ns
    assert [_line(s) for s in replayed] == [_line(s) for s in live]
    assert replayed == live


def _line(signal: sig.Signal) -> str:
    rules = ",".join(f"{r.name}={r.value}{'*' if r.fired else ''}" for r in signal.rules)
    return (
        f"{signal.ts_signal_ns} {signal.ts_event_ns} {signal.strategy_id} {signal.symbol} "
        f"{sig.Direction.Name(signal.direction)} {signal.conviction} {signal.score} "
        f"v{signal.patch_version} {rules}"
    )


async def _ended(database: str, placed: list[str]) -> int | None:
    """How many of the placed orders the recorder holds ended (filled, cancelled, ...), once it
    holds them all."""
    sql = (
        "SELECT count(DISTINCT client_order_id) FROM executions WHERE client_order_id = ANY($1) "
        "AND status IN ('filled', 'canceled', 'rejected', 'expired')"
    )
    ended = int(await _fetchval(database, sql, placed))
    return ended if ended == len(placed) else None


async def test_the_live_orders_sent_at_their_recorded_arrivals_fill_as_they_did_live(
    session: Session,
) -> None:
    """The recorded latency model: each order of the live window reaches the backtest's replayed
    venue at the time the live venue took it (and its cancel at the cancel's), so it meets the
    recorded book as it met the venue's: the same fills, ids and times aside."""
    assert len(session.placed) == ORDERS, "every order was placed"
    await until(lambda: _ended(session.database, session.placed), 30, what="every order recorded, ended")
    start, end = session.orders_start_ns, session.orders_end_ns
    orders = await load_recorded_orders(session.database, "sim", start, end)
    assert sorted(o.request.client_order_id for o in orders) == sorted(session.placed)
    sim = load_sim_config(session.sim_config)
    market = ReplayedMarket(
        "sim",
        sim_instruments(sim),
        FeeSchedule(maker=sim.maker_fee_rate, taker=sim.taker_fee_rate),
        dict(sim.balances),
        start_ns=start,
    )
    replayed = await refill(session.database, market, [TRADED], start, end, orders)
    live = {o.request.client_order_id: o.outcome for o in orders}
    differences = [
        f"{cid}: live {live[cid]}\n  replayed {replayed.get(cid)}"
        for cid in sorted(live)
        if replayed.get(cid) != live[cid]
    ]
    assert not differences, "the replayed fills are the live ones:\n" + "\n".join(differences)
    # What the comparison covered: market orders filled, some order across price levels, a
    # resting order that filled as a maker or was cancelled, stops sent whole (none triggered).
    requests = {o.request.client_order_id: o.request for o in orders}
    kinds = {cid: requests[cid].type for cid in live}
    assert all(
        live[cid].status is OrderStatus.FILLED for cid, kind in kinds.items() if kind is OrderType.MARKET
    )
    assert any(len(o.fills) > 1 for o in live.values()), "an order filled at more than one price"
    rested = [o for o in live.values() if o.status is OrderStatus.CANCELED or Liquidity.MAKER in _sides(o)]
    assert rested, "an order rested"
    stops = [cid for cid, kind in kinds.items() if kind is OrderType.STOP_MARKET]
    assert len(stops) == ORDERS // len(ORDER_PLAN) and all(requests[cid].trigger_price for cid in stops)


def _sides(outcome: Outcome) -> set[Liquidity]:
    return {f.liquidity for f in outcome.fills}
