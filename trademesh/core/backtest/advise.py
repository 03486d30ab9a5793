"""The advisor's engine core in a backtest: each signal as the advisor reads it off the bus
(the detector's message, trademesh.core.advisor.convert.signal_from_pb), with the context the live shell
gathers through the tools (trademesh.core.advisor.gather) made from the backtest's own state instead:
the bars engine's closed bars (trademesh.core.bars.engine, as the bars service builds them), the replayed
venue's book, positions, balances and open orders, and the signals of the run so far.

The LLM is off by default: a decision is final at once (the deterministic path,
docs/advisor.md). With recorded answers (`--llm recorded`, trademesh.core.backtest.answers) a decision
that asks the LLM gets the live session's answer to the same signal at once. The stage timer
is fixed (0), so the telemetry's durations do not depend on the machine.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.replay import (
    AdvisorConfig,
    AdvisorCore,
    BookTop,
    Context,
    ModelArtifact,
    ModelLibrary,
    OpenOrder,
    Pending,
    decision_to_pb,
    load_calibration,
    serving_model,
    signal_from_pb,
)
from trademesh.core.backtest.answers import RecordedAnswers
from trademesh.core.backtest.detect import no_timer
from trademesh.core.bars.replay import VenueBars, WatermarkRules
from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Balance, Candle, Instrument, Position, Timeframe
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["AdviseStage", "BarKeeper", "BarPrices", "ReplayedVenueView", "load_advisor_model"]

_RECENT_SIGNALS = 20
# A bar's open, high, low and close as Decimals, made once a bar by whoever reads them first.
BarPrices = tuple[Decimal, Decimal, Decimal, Decimal]


def load_advisor_model(name: str | None, timeframe: str | None) -> ModelArtifact:
    """The model the live advisor would serve for these options (the shipped default)."""
    return serving_model(ModelLibrary(None), name, timeframe)


class BarKeeper:
    """Closed bars of one timeframe per symbol, as the live advisor reads them from the bar
    service: the recorded bars of that timeframe when the history has them; else built from
    the recorded trades by the bar service's own engine (trademesh.core.bars.engine). A recorded run
    starts with the recorded bars closed by its start (`warm`), as the live advisor's first
    context holds the bar store's."""

    def __init__(self, venue: str, timeframe: str, kept: int) -> None:
        self.timeframe = Timeframe.from_label(timeframe)
        self._wanted = TIMEFRAME_TO_PB[self.timeframe]  # the wire's timeframe of the bars kept
        self._engine = VenueBars(venue, WatermarkRules())
        self._bars: dict[str, deque[Candle]] = {}
        self._kept = kept
        self._entries = 0
        self._recorded = False  # recorded bars of the timeframe came: trades build none

    @property
    def kept(self) -> int:
        """Bars kept per symbol (the newest)."""
        return self._kept

    def warm(self, bars: Sequence[bus.Bar]) -> None:
        """Closed bars from before the run, oldest first (those of another timeframe ignored);
        the run's own bars follow them."""
        wanted = self._wanted
        for bar in bars:
            if bar.timeframe == wanted:
                self._keep(bar)

    def on_bars(self, bars: Sequence[bus.Bar], prices: Sequence[BarPrices | None] | None = None) -> None:
        """`prices`: each bar's prices made already (Decimal of its texts; None: not made), in
        the bars' order (the replayed venue's bar walk makes them: trademesh.core.backtest.run)."""
        wanted = self._wanted
        for at, bar in enumerate(bars):
            if bar.timeframe == wanted:
                self._recorded = True
                self._keep(bar, None if prices is None else prices[at])

    def on_trades(self, trades: Sequence[md.MarketEvent], now_ns: int) -> None:
        if not trades or self._recorded:
            return
        self._entries += 1
        envelope = bus.Envelope(ts_publish_ns=now_ns)
        envelope.market.events.extend(trades)
        # A bus entry id of the event time (its ms) and a counter: always increasing.
        output = self._engine.process([(f"{now_ns // 1_000_000}-{self._entries}", envelope)])
        for bar in output.bars.get(self.timeframe, ()):
            self._keep(bar)

    def _keep(self, bar: bus.Bar, prices: BarPrices | None = None) -> None:
        kept = self._bars.get(bar.symbol)
        if kept is None:  # not setdefault: that would make a deque per bar
            kept = self._bars[bar.symbol] = deque(maxlen=self._kept)
        kept.append(_candle(self.timeframe, bar, prices))

    def bars(self, symbol: str) -> tuple[Candle, ...]:
        return tuple(self._bars.get(symbol, ()))


_new_object = object.__new__
_set_attribute = object.__setattr__


def _candle(timeframe: Timeframe, bar: bus.Bar, prices: BarPrices | None = None) -> Candle:
    """The bar as the closed Candle the advisor's context holds, equal to `Candle(...)` of the same
    fields. Made without the frozen dataclass's __init__ (one `object.__setattr__` a field: a
    third of a Candle's cost, made once a bar): its fields set as one dict. Candle has no
    __post_init__ and no slots (a slotted Candle would fail here, at the first bar). `prices`:
    the Decimals of its open, high, low and close made already (the same values, exponents
    included: each is Decimal of the bar's text)."""
    if prices is None:
        prices = (Decimal(bar.open), Decimal(bar.high), Decimal(bar.low), Decimal(bar.close))
    candle = _new_object(Candle)
    _set_attribute(
        candle,
        "__dict__",
        {
            "timeframe": timeframe, "open_time_ns": bar.open_time_ns, "open": prices[0],
            "high": prices[1], "low": prices[2], "close": prices[3],
            "volume": Decimal(bar.volume), "quote_volume": Decimal(bar.quote_volume or "0"),
            "trade_count": bar.trade_count, "closed": True,
        },
    )  # fmt: skip
    return candle


@dataclasses.dataclass(frozen=True)
class ReplayedVenueView:
    """What the replayed venue shows of the market and the account at a time."""

    instrument: Callable[[str], Instrument | None]
    book: Callable[[str], BookTop | None]
    positions: Callable[[], Sequence[Position]]
    balances: Callable[[], Sequence[Balance]]
    open_orders: Callable[[str], Sequence[OpenOrder]]
    last_event_ns: Callable[[str], int | None]


class AdviseStage:
    def __init__(
        self, config: AdvisorConfig, model: ModelArtifact, bars: BarKeeper, account: ReplayedVenueView
    ) -> None:
        self._config, self._model = config, model
        self._calibration = load_calibration(None, model.timeframe).calibration
        self.core = self._core(llm=False)
        self.model_version = model.version
        self.bars = bars
        self.account = account
        self.answers: RecordedAnswers | None = None
        self._recent: dict[tuple[str, str], deque[Signal]] = {}

    def replay(self, answers: RecordedAnswers) -> None:
        """Turn the LLM on, its answers the recorded ones (before the run's first signal)."""
        self.core = self._core(llm=True)
        self.answers = answers

    def _core(self, llm: bool) -> AdvisorCore:
        synthesis = dataclasses.replace(self._config.synthesis, llm_enabled=llm)
        config = dataclasses.replace(self._config, synthesis=synthesis)
        return AdvisorCore(config, self._model, self._calibration, timer=no_timer)

    def decide(self, message: sig.Signal, now_ns: int) -> am.Decision:
        """The decision on one signal, as the advisor publishes it (its intent inside, if any),
        but its stages' results without their summaries and output JSON."""
        signal = signal_from_pb(message, "signal.")
        decision = self.core.on_signal(signal, self._context(signal, now_ns), now_ns)
        trace = None
        if isinstance(decision, Pending):
            if self.answers is None:
                raise FailedPrecondition("the advisor waited for an LLM in a backtest, where the LLM is off")
            answered = self.core.on_answer(self.answers.answer(decision.decision_id, signal), now_ns)
            assert answered is not None  # it was pending
            decision, trace = answered, self.answers.trace(signal)
        market = (signal.venue, signal.symbol)
        recent = self._recent.get(market)
        if recent is None:  # not setdefault: that would make a deque per decision
            recent = self._recent[market] = deque(maxlen=_RECENT_SIGNALS)
        recent.append(signal)
        events = [e for e in self.core.take_telemetry() if e.subject.decision_id == decision.decision_id]
        # No stage's summary or output JSON: a run keeps none of them (trademesh.core.backtest.run's Tape).
        made = decision_to_pb(decision, events, trace, model_version=self.model_version, stage_outputs=False)
        if made.synthesis.source == am.SYNTHESIS_SOURCE_LLM:  # the live answer, replayed
            made.synthesis.source = am.SYNTHESIS_SOURCE_RECORDED
        return made

    def _context(self, signal: Signal, now_ns: int) -> Context:
        account, symbol = self.account, signal.symbol
        candles = self.bars.bars(symbol)
        book = account.book(symbol)
        last_event = account.last_event_ns(symbol)
        return Context(
            venue=signal.venue,
            symbol=symbol,
            gathered_ns=now_ns,
            instrument=account.instrument(symbol),
            price=candles[-1].close if candles else None,
            book=book,
            bars=candles,
            positions=tuple(account.positions()),
            balances=tuple(account.balances()),
            open_orders=tuple(account.open_orders(symbol)),
            recent_signals=tuple(self._recent.get((signal.venue, symbol), ())),
            last_event_ns=last_event,
        )
