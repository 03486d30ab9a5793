"""A backtest put together from its config: the replayed venue (its instruments, fees and
balances: the exchange part of a sim config file, `up`'s demo market's unless one is given), the
strategies on the run's venue and symbols, the inspector's policies and the advisor's options as
the live services read them, then the run over the recorder's history (trademesh.core.backtest.source).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.replay import load_engine_config, with_overrides
from trademesh.core.backtest.answers import load_recorded_answers
from trademesh.core.backtest.bar_feed import (
    bar_sources,
    bars_only_of,
    bookless_of,
    fed_from_bars,
    on_timeframe,
)
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import bar_value, retarget
from trademesh.core.backtest.funding_rates import load_funding_rates
from trademesh.core.backtest.market import Latency, ReplayedMarket, queue_rule
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.regimes import WARM_BARS
from trademesh.core.backtest.run import Backtest, RunSettings
from trademesh.core.backtest.screens import ScreenStage, screens_of
from trademesh.core.backtest.session import Item, OnProgress, drive
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.backtest.twins import load_twin_arrivals
from trademesh.core.detector.replay import (
    REGIME_TIMEFRAME,
    Catalog,
    Event,
    Strategy,
    bar_needs,
    event_time,
    load_strategy,
)
from trademesh.core.domain.matching.config import (
    SIM_VENUE,
    ExchangeConfig,
    instruments,
    load_exchange,
    margin_terms,
)
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.core.inspector.replay import DEFAULT_POLICIES, journal_policies
from trademesh.core.platform.config.file import read_text
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.screener.replay import SCREENS_DIR, load_screens

__all__ = [
    "MESH_EXCHANGE",
    "SIM_MARKET_KEYS",
    "SIM_SYMBOL_KEYS",
    "advisor_bars",
    "build",
    "exchange_of",
    "funding_terms",
    "recorded_history",
    "regime_bars",
    "run_recorded",
    "run_symbols",
    "screen_bars",
    "screen_stage",
    "strategies_of",
]

_MS = 1_000_000

# The exchange of `trademesh up`'s sim, the demo market (trademesh/venues/sim/demo.toml, which a backtest
# cannot import: a test holds the two equal): a derivatives venue's base-tier fees, the default
# instruments and balances.
MESH_EXCHANGE = ExchangeConfig(maker_fee_rate=Decimal("0.0002"), taker_fee_rate=Decimal("0.0005"))
# The keys a sim config file holds for the sim's synthetic market, top-level and in each
# [[symbols]] table (trademesh/venues/sim/config.py; a test holds them equal): a backtest replays a recorded
# market instead, and leaves them to the sim.
SIM_MARKET_KEYS = ("seed", "tick_interval_ms", "ticker_interval_ms", "candle_interval_ms", "history_s")
SIM_SYMBOL_KEYS = (
    "start_price", "volatility_per_sqrt_s", "trades_per_s", "book_updates_per_s", "book_depth_levels",
    "level_spacing_ticks", "maker_size_lots", "taker_size_lots", "drift_per_s",
)  # fmt: skip


def strategies_of(config: BacktestConfig) -> list[Strategy]:
    catalog = Catalog.builtin()
    loaded = [load_strategy(path, catalog) for path in config.strategies]
    if config.bars:  # --bars: every bar source on that timeframe (trademesh.core.backtest.bar_feed)
        loaded = [on_timeframe(s, config.bars) for s in loaded]
    return [retarget(s, config.venue, config.symbols or s.symbols) for s in loaded]


def build(config: BacktestConfig, strategies: Sequence[Strategy] | None = None) -> Backtest:
    """The run's parts, ready for its events (`strategies`: these instead of the config's files)."""
    exchange = exchange_of(config)
    listed = instruments(exchange, SIM_VENUE)
    strategies = strategies_of(config) if strategies is None else strategies
    known = {i.symbol for i in listed}
    for symbol in [*(s for strategy in strategies for s in strategy.symbols), *config.symbols]:
        if symbol not in known:
            raise InvalidArgument.field(
                "symbols",
                f"{shown(symbol)} is not an instrument of the venue's sim config "
                f"({', '.join(sorted(known))})",
            )
    market = ReplayedMarket(
        config.venue,
        listed,
        FeeSchedule(maker=exchange.maker_fee_rate, taker=exchange.taker_fee_rate),
        dict(exchange.balances),
        Latency(int(config.order_latency_ms * _MS), int(config.report_latency_ms * _MS)),
        start_ns=config.start_ns,
        queue=queue_rule(config.venue),  # the recorded venue's: the sim's makers are known
        funding=funding_terms(exchange),
        margin=margin_terms(exchange),
    )
    # Read over the shipped set, as the live inspector reads its file.
    path = config.policies or DEFAULT_POLICIES
    policies = journal_policies(read_text(path, "policies"), str(path))
    settings = RunSettings(
        venue=config.venue,
        start_ns=config.start_ns,
        end_ns=config.end_ns,
        policies=policies,
        starting_equity=config.starting_equity,
        advisor=with_overrides(
            load_engine_config(config.advisor_config), sizing__max_notional_share=config.max_notional_share
        ),
        timeframe=config.timeframe,
        sample_ns=int(config.sample_s * 1_000_000_000),
    )
    screens = screen_stage(config, strategies, sorted(known))
    return Backtest(settings, market, listed, strategies, screens)


def screen_stage(
    config: BacktestConfig, strategies: Sequence[Strategy], known: Sequence[str]
) -> ScreenStage | None:
    """The screens the screen-driven strategies follow (none: None), scanning the run's symbols:
    the config's, else every instrument of the replayed venue (the screen's universe narrows it)."""
    if all(strategy.screen is None for strategy in strategies):
        return None
    screens = screens_of(strategies, load_screens(config.screens or SCREENS_DIR), config.venue)
    universe = sorted(set(config.symbols)) if config.symbols else list(known)
    return ScreenStage(config.venue, strategies, screens, universe, config.start_ns)


def funding_terms(exchange: ExchangeConfig) -> dict[str, FundingTerms]:
    """Each perpetual's funding rate and interval, as the sim config gives them to the live sim;
    a run over recorded history pays the recorded rates where it has them (recorded_funding)."""
    return {
        item.symbol: FundingTerms(item.funding_rate, item.funding_interval_s)
        for item in exchange.symbols
        if item.perpetual
    }


def exchange_of(config: BacktestConfig) -> ExchangeConfig:
    """The replayed venue's exchange: the sim config's the run names, else `up`'s demo market's."""
    if config.sim_config is None:
        return MESH_EXCHANGE
    return load_exchange(config.sim_config, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS)


def symbols_of(backtest_strategies: list[Strategy]) -> list[str]:
    return sorted({symbol for strategy in backtest_strategies for symbol in strategy.symbols})


def run_symbols(config: BacktestConfig) -> list[str]:
    """The symbols a run reads: the config's, else its strategies' own, and with a screen-driven
    strategy every instrument of the replayed venue (the screen's universe)."""
    if config.symbols:
        return sorted(set(config.symbols))
    strategies = strategies_of(config)
    if all(strategy.screen is None for strategy in strategies):
        return symbols_of(strategies)
    every = {i.symbol for i in instruments(exchange_of(config), SIM_VENUE)}
    return sorted(set(symbols_of(strategies)) | every)


async def run_recorded(
    config: BacktestConfig, backtest: Backtest | None = None, on_progress: OnProgress | None = None
) -> RunOutcome:
    """The run (`backtest`: built already) over the recorder's history of the range."""
    backtest = backtest or build(config)
    backtest, fed_timeframes = await on_bars(config, backtest)
    # The regimes first: the patches activated by their warm-up then hear the start's regime.
    backtest.warm_regimes(await regime_bars(config, backtest))
    backtest.detect.warm_from_history(await recorded_history(config, backtest), config.start_ns)
    backtest.bars.warm(await advisor_bars(config, backtest))
    if backtest.screens is not None:
        backtest.screens.on_bars(await screen_bars(config, backtest.screens))
    if config.llm == "recorded":
        backtest.advise.replay(
            await load_recorded_answers(config.database_url, config.venue, config.start_ns, config.end_ns)
        )
    if config.latency == "recorded":
        backtest.time_orders(
            await load_twin_arrivals(
                config.database_url,
                config.venue,
                config.start_ns,
                config.end_ns,
                backtest.market.latency.order_ns,
            )
        )
    await recorded_funding(config, backtest)
    symbols = run_symbols(config)
    # The recorded bars of the advisor's timeframe too, each at its close: the live advisor reads
    # the bar service's bars, which the advisor's BarKeeper then prefers to its own from trades
    # (built from the same trades, they part at the edges: stops a little apart). The detector
    # gets them as live it gets the bus's bars: only a patch with a `bars` source reads them.
    # The regimes' 1m bars too when a patch listens to regimes (Overwatch reads them live).
    # The screens' bars and those the patches they start warm from, too (trademesh.core.backtest.screens).
    wanted = {backtest.bars.timeframe, *fed_timeframes}
    if backtest.regimes is not None:
        wanted.add(REGIME_TIMEFRAME)
    if backtest.screens is not None:
        wanted.update(backtest.screens.timeframes)
    timeframes = tuple(sorted(wanted, key=lambda t: t.value))
    source = RecordedSource(
        config.database_url,
        config.venue,
        symbols,
        config.start_ns,
        config.end_ns,
        kinds=run_kinds(backtest),
        timeframes=timeframes,
    )
    tape = await drive(backtest, _market_events(source), on_progress)
    return outcome(tape, backtest.settings.sample_ns)


def run_kinds(backtest: Backtest) -> tuple[str, ...]:
    """What the run reads of the recorder's history: books, trades and bars; and the marks the
    venue stated where its perpetuals are margined (docs/backtest-market.md, "Recorded marks"): margin
    and liquidation are reckoned at them, as the live venue reckoned them, not at the book's mid."""
    perpetual = any(i.kind is InstrumentKind.PERPETUAL for i in backtest.instruments.values())
    marks = perpetual and backtest.market.margined
    return ("book", "trade", "mark", "bar") if marks else ("book", "trade", "bar")


async def on_bars(config: BacktestConfig, backtest: Backtest) -> tuple[Backtest, set[Timeframe]]:
    """The run on history of bars alone (docs/backtest-market.md, "History of bars alone"): a
    trade_bars source of a symbol with bars and no trades in the range is fed those bars
    (trademesh.core.backtest.bar_feed: the run built again with those strategies), and a symbol with no
    recorded book but bars has its orders filled on them (ReplayedMarket.on_bar): the bars its
    sources are fed, the shortest, else the advisor's. The run as it was, and no timeframe, when
    the history holds every symbol's book (a run over recorded trades and books)."""
    url, venue, start, end = config.database_url, config.venue, config.start_ns, config.end_ns
    fed_timeframes: set[Timeframe] = set()
    fills: dict[str, Timeframe] = {}
    wanted_sources = bar_sources(backtest.strategies, venue)
    if wanted_sources:
        bars_only = await bars_only_of(url, venue, wanted_sources, start, end)
        if bars_only:
            fed, fed_timeframes = fed_from_bars(
                backtest.strategies, venue, lambda symbol, tf: (symbol, tf) in bars_only
            )
            backtest = build(config, fed)
            for symbol, timeframe in sorted(bars_only, key=lambda item: (item[0], item[1].value)):
                if symbol in backtest.instruments and symbol not in fills:
                    fills[symbol] = timeframe
    advisor = backtest.bars.timeframe
    others = [symbol for symbol in backtest.symbols if symbol not in fills and symbol in backtest.instruments]
    for symbol in await bookless_of(url, venue, others, advisor, start, end):
        fills[symbol] = advisor
    if fills:
        backtest.fill_on_bars(fills)
    return backtest, fed_timeframes


async def recorded_funding(config: BacktestConfig, backtest: Backtest) -> None:
    """The rates the recorder kept for the run's perpetuals, paid where they cover a funding
    time (docs/backtest-market.md, "Funding"); the sim config's rate elsewhere."""
    intervals = {
        symbol: terms.interval_s
        for symbol, terms in funding_terms(exchange_of(config)).items()
        if symbol in backtest.instruments
    }
    url, venue = config.database_url, config.venue
    rates = await load_funding_rates(url, venue, intervals, config.start_ns, config.end_ns)
    backtest.market.replay_funding_rates(rates)


async def recorded_history(config: BacktestConfig, backtest: Backtest) -> list[tuple[str, Event]]:
    """The closed bars before the start that the patches need to start warm, from the
    recorder's bars (the bar service's, built from the same trades as the venue's candles the
    live detector warms from)."""
    detect = backtest.detect
    wanted: dict[tuple[str, str, Timeframe], int] = {}
    for patch_id in detect.warming:
        for need in bar_needs(detect.engine, patch_id):
            key = (need.venue, need.symbol, need.timeframe)
            wanted[key] = max(wanted.get(key, 0), need.bars)
    history: list[tuple[str, Event]] = []
    for (venue, symbol, timeframe), bars in sorted(
        wanted.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2].value)
    ):
        start = config.start_ns - (bars + 2) * timeframe.ns
        source = RecordedSource(
            config.database_url,
            venue,
            [symbol],
            start,
            config.start_ns,
            kinds=("bar",),
            timeframes=(timeframe,),
        )
        found = [bar_value(r.message) async for r in source if isinstance(r.message, bus.Bar)]
        history += [(venue, bar) for bar in found[-bars:]]
    history.sort(key=lambda item: event_time(item[1]))
    return history


async def regime_bars(config: BacktestConfig, backtest: Backtest) -> list[bus.Bar]:
    """The recorded 1m bars closed before the start that warm the regimes (trademesh.core.backtest.regimes);
    none when no patch listens to regimes."""
    if backtest.regimes is None:
        return []
    source = RecordedSource(
        config.database_url,
        config.venue,
        backtest.symbols,
        config.start_ns - WARM_BARS * REGIME_TIMEFRAME.ns,
        config.start_ns,
        kinds=("bar",),
        timeframes=(REGIME_TIMEFRAME,),
    )
    return [r.message async for r in source if isinstance(r.message, bus.Bar)]


async def screen_bars(config: BacktestConfig, screens: ScreenStage) -> list[bus.Bar]:
    """The recorded bars closed before the start that the screens' windows and the patches they
    start need, every symbol's of the run (trademesh.core.backtest.screens)."""
    bars: list[bus.Bar] = []
    for timeframe, count in sorted(screens.warm_bars().items(), key=lambda item: item[0].value):
        since, url = config.start_ns - (count + 2) * timeframe.ns, config.database_url
        symbols = list(screens.universe)
        source = RecordedSource(url, config.venue, symbols, since, config.start_ns, kinds=("bar",),
                                timeframes=(timeframe,))  # fmt: skip
        bars += [r.message async for r in source if isinstance(r.message, bus.Bar)]
    return bars


async def advisor_bars(config: BacktestConfig, backtest: Backtest) -> list[bus.Bar]:
    """The recorded bars of the advisor's timeframe closed by the start, the newest of them as
    many as its context keeps (the keeper keeps those), per symbol: what the live advisor's first
    context reads from the bar store, its last bars whatever time they span. Read over twice their
    time, so a market with no bar in some intervals (no trade then) still has them all (the
    regime reads 700: trademesh.core.advisor.engine.regime); one with fewer than half its intervals barred
    starts with fewer than live."""
    keeper = backtest.bars
    source = RecordedSource(
        config.database_url,
        config.venue,
        backtest.symbols,
        config.start_ns - 2 * keeper.kept * keeper.timeframe.ns,
        config.start_ns + 1,  # a bar closing at the start is known then
        kinds=("bar",),
        timeframes=(keeper.timeframe,),
    )
    return [r.message async for r in source if isinstance(r.message, bus.Bar)]


async def _market_events(source: RecordedSource) -> AsyncIterator[Item]:
    async for recorded in source:
        yield recorded.message
