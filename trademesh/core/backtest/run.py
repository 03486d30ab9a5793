"""One backtest: recorded market events through the live engine cores on a simulated clock.

The clock is the data's. Each recorded timestamp is one step:

1. everything scheduled up to and including that time happens first, in time order: the
   venue's reports reaching us (trademesh.core.backtest.market: an order's fills come back after the
   latency model's delays), the inspector's timers (when its core asked to be woken: a
   protective order's retry, a coalescing window's end), the detector's clock ticks, the
   inspector's once-a-second marks, the perpetuals' funding times (their positions pay or
   receive funding at the venue, and the books post it as the live ledger does), and the equity
   curve's samples;
2. the step's recorded events reach the replayed venue (its book and trades move, resting
   orders fill), the bars the advisor's context reads, and the detector, which evaluates once;
3. each signal goes to the advisor; a decision's intent goes to the inspector (in a recorded
   run, at the live decision's time: trademesh.core.backtest.twins, with the market as of the signal's
   time); the orders it allows go to the replayed venue, arriving after the order latency (or
   at their live twins' arrivals). Each of a strategy's own position requests is planned by
   the live inspector's function (trademesh.core.inspector.requests) and its intents checked at once,
   in order (a flip's open only once its close was allowed); a request refused is kept with
   its risk event.

The markets' regimes (a patch with a `regime` source): the step's 1m bars go through Overwatch's
engine (trademesh.core.backtest.regimes), and each change is fed right after the detector's step with
those bars and evaluated at that time, as live the detector hears Overwatch's change after the
bar that made it.

Screen-driven strategies (trademesh.core.backtest.screens): each screen is evaluated by the Screener's
engine on the run's bars at every multiple of its cadence (after the detector's tick of that
time, before its step), and the patches its set gains start, those it loses retire, then; one
leaving with a position open runs on with its entries muted until the inspector's view of it is
flat (heard as the strategies hear back, below).

What the strategies hear back (trademesh.core.detector.feedback: the inspector's risk state, their own
positions) is read from the inspector core's views, as the live detector reads them from its
API, after each detector step (a timestamp's events, else a tick) that follows a change of the
core or a second's passing, when some patch has a source that listens (`strategy_position`,
`external`); what changed is fed and evaluated at that time, as the live runner feeds what it
heard after the market data it released (trademesh.core.detector.runner).

Ties are broken the same way every run (the source's order, then the schedule's kinds in the
order above), so the same data and settings give the same signals, orders and fills.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.replay import AdvisorConfig, BookTop, OpenOrder
from trademesh.core.backtest.advise import (
    AdviseStage,
    BarKeeper,
    BarPrices,
    ReplayedVenueView,
    load_advisor_model,
)
from trademesh.core.backtest.books import BooksStage
from trademesh.core.backtest.detect import DetectStage
from trademesh.core.backtest.hearing import held_of, risk_values_of
from trademesh.core.backtest.inspect import InspectStage, OrderDesk
from trademesh.core.backtest.market import ReplayedMarket
from trademesh.core.backtest.prices import PriceLines
from trademesh.core.backtest.regimes import RegimeStage, listens_to_regimes
from trademesh.core.backtest.results import EquityPoint, FillRecord
from trademesh.core.backtest.screens import ScreenStage, book_ticker
from trademesh.core.backtest.twins import OrderTiming
from trademesh.core.detector.replay import (
    Evaluation,
    ExternalValue,
    FeedbackTracker,
    PositionValue,
    RegimeValue,
    RosterChange,
    Source,
    Strategy,
    patch_id,
    position_to_pb,
    signal_to_pb,
)
from trademesh.core.domain.convert import TIMEFRAME_TO_PB, funding_payment_to_pb
from trademesh.core.domain.model import Execution, FundingPayment, Instrument, Order, Timeframe
from trademesh.core.inspector.replay import (
    MarketView,
    RiskEvent,
    RiskVerdict,
    plan_request,
)
from trademesh.core.ledger.replay import UNATTRIBUTED, strategy_label
from trademesh.core.platform.errors import NotFound
from trademesh.core.screener.replay import Ticker
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["Backtest", "RunSettings"]

_NS = 1_000_000_000
_MARK_NS = _NS  # the inspector shell marks once a second


@dataclass(frozen=True)
class RunSettings:
    venue: str
    start_ns: int
    end_ns: int
    policies: str  # the inspector's policy file's text
    starting_equity: Decimal
    advisor: AdvisorConfig = field(default_factory=AdvisorConfig)
    advisor_model: str | None = None
    timeframe: str | None = None  # the advisor's bars (None: its model's)
    sample_ns: int = 60 * _NS  # the equity curve's step
    tick_hz: float = 10.0


@dataclass
class Tape:
    """What the run produced, in the order it happened.

    `digest` is a hash of every signal and, per decision, the decision message as the backtest
    makes it (trademesh.core.backtest.advise): its ids, outcome, blocked stage and reason, conviction,
    synthesis, hallucination flags, intent, and each stage's status, timing and reasons, but
    not the stages' summaries and output JSON (the backtest does not make them). Two runs with
    the same digest made the same signals and the same decisions on them.
    """

    signals: list[sig.Signal] = field(default_factory=list)
    # Each decision as kept: its ids, outcome and intent (the stages left out, so a long run's
    # memory does not grow with it); `digest` covers more of each (above).
    decisions: list[am.Decision] = field(default_factory=list)
    verdicts: list[RiskVerdict] = field(default_factory=list)  # the inspector's, one per intent
    # The strategies' own position requests, and the risk events of those refused as such.
    requests: list[sig.PositionRequest] = field(default_factory=list)
    refusals: list[RiskEvent] = field(default_factory=list)
    # What the strategies heard back, each time it changed: (time, the events).
    heard: list[tuple[int, list[ExternalValue | PositionValue]]] = field(default_factory=list)
    # The markets' regime changes the strategies heard (at each one's time, `ts_event_ns`).
    regimes: list[RegimeValue] = field(default_factory=list)
    # The screen-driven strategies' patches started and retired: (strategy id, the change).
    screens: list[tuple[str, RosterChange]] = field(default_factory=list)
    signals_muted: int = 0  # entries of patches leaving their screen's set, not acted on
    orders: list[Execution] = field(default_factory=list)  # every order update the venue reported
    fills: list[FillRecord] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)  # what the positions paid (< 0) or got
    funding_recorded: int = 0  # of them, those at a recorded rate (the rest at the sim config's)
    curve: list[EquityPoint] = field(default_factory=list)
    # Each strategy's own curve: the starting equity plus its PnL in the ledger's books
    # (realised, fees, funding and unrealised at the last trades), "unattributed" included.
    strategy_curves: dict[str, list[EquityPoint]] = field(default_factory=dict)
    # Each symbol's market price over the run, for the report's chart (trademesh.core.backtest.prices).
    prices: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    events: int = 0
    data_ns: int = 0  # the data time reached
    digest: Any = field(default_factory=hashlib.sha256)  # of every signal and decision, in order

    def decided(self, signal: sig.Signal, decision: am.Decision) -> None:
        """A signal and the advisor's decision on it: into the digest, and kept."""
        self.digest.update(signal.SerializeToString())
        self.digest.update(decision.SerializeToString(deterministic=True))
        self.decisions.append(_kept(decision))


class Backtest:
    def __init__(
        self,
        settings: RunSettings,
        market: ReplayedMarket,
        instruments: Sequence[Instrument],
        strategies: Sequence[Strategy],
        screens: ScreenStage | None = None,
    ) -> None:
        self.settings = settings
        self.market = market
        self.strategies = tuple(strategies)
        self.tape = Tape(data_ns=settings.start_ns)
        start = settings.start_ns
        self.price_lines = PriceLines(start, settings.end_ns)
        self.tape.prices = self.price_lines.lines
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self._last_price: dict[str, Decimal] = {}
        self._new_prices: dict[str, str] = {}  # the last trades' prices not yet read, as their text
        self.last_event: dict[str, int] = {}
        model = load_advisor_model(settings.advisor_model, settings.timeframe)
        # As many bars as the live context holds for the regime (trademesh.core.advisor.engine.regime), so a
        # decision reads the regime live read of the same bars.
        kept = max(settings.advisor.synthesis.bars_in_request * 5, settings.advisor.regime.window_bars)
        self.bars = BarKeeper(settings.venue, model.timeframe, kept)
        self.detect = DetectStage(strategies, start, settings.tick_hz)
        self.advise = AdviseStage(settings.advisor, model, self.bars, self._account_view())
        desk = OrderDesk(
            self.instruments, market.submit, market.cancel, market.open_orders, self._find,
            position=self._position, held_at=market.held_at, amend=market.amend, **_margin_desk(market),
        )  # fmt: skip
        self.inspect = InspectStage.start(
            settings.venue, desk, settings.policies, settings.starting_equity, start
        )
        leverage_of = (lambda symbol: market.leverage(symbol).leverage) if market.margined else None
        self.books = BooksStage(settings.venue, self.instruments, leverage_of=leverage_of)
        self.books.open({b.asset: b.total for b in market.balances()}, start)
        self.strategy_of: dict[str, str] = {}  # client order id -> strategy (entries)
        listed = {symbol for strategy in strategies for symbol in strategy.symbols}
        self.symbols = sorted(listed | set(screens.universe if screens is not None else ()))
        for name in [*sorted({s.id for s in strategies}), strategy_label(UNATTRIBUTED)]:
            self.tape.strategy_curves[name] = []
        self.next_mark_ns = start + _MARK_NS
        self._moved = False  # events came since the last mark
        # The curve starts once the first events have priced the account (then every step).
        self.next_sample_ns = settings.end_ns + 1
        # Intents the inspector checks later (OrderTiming.check_at), each with the market as of
        # its signal's time: (due, sequence, intent, market), earliest first.
        self._checks: list[tuple[int, int, am.Intent, MarketView]] = []
        self._checks_made = 0
        # A screen-driven strategy's patches are not there yet: their stand-ins say what they hear,
        # and its leaving patches wait on the positions (the inspector's view, heard back).
        self.screens = screens
        patches = [*self.detect.engine.patches.values(), *(screens.probes if screens is not None else ())]
        self.feedback = Feedback(patches, always=screens is not None)
        self.regimes = RegimeStage() if listens_to_regimes(patches) else None
        self.muted: frozenset[str] = frozenset()
        if screens is not None:
            screens.positions = self._position_open
        self._stepping: int | None = None  # the time of the step under way
        # The symbols filled on bars (history of bars alone): symbol -> the wire timeframe.
        self._bar_fills: dict[str, int] = {}

    def fill_on_bars(self, timeframes: dict[str, Timeframe]) -> None:
        """Fill these symbols' orders on their bars of the timeframe given (their history holds
        bars and no trades: docs/backtest-market.md, "Fills on bars"): each such bar moves the replayed
        venue's book along its path, is the symbol's last market event and its close its price."""
        self._bar_fills = {symbol: TIMEFRAME_TO_PB[tf] for symbol, tf in timeframes.items()}
        self.market.fill_on_bars(sorted(timeframes))

    @property
    def last_price(self) -> dict[str, Decimal]:
        """Each symbol's last trade price. A trade's text becomes a Decimal only when read (the
        samples, intents, fees and marks read them far less often than trades come: a year of 1m
        bars brings 525,600); the same value either way."""
        new_prices = self._new_prices
        if new_prices:
            for symbol, text in new_prices.items():
                self._last_price[symbol] = Decimal(text)
            new_prices.clear()
        return self._last_price

    # ---- the steps

    def step(self, now: int, events: Sequence[md.MarketEvent], bars: Sequence[bus.Bar] = ()) -> None:
        """One recorded time's events (their ts_event_ns) and the bars that closed then."""
        self._stepping = now
        self.advance(now)
        if now >= self.price_lines.due_ns:
            self.price_lines.crossed(now, self.last_price)
        self._moved = True
        trades = []
        on_market, last_event, new_prices = self.market.on_market, self.last_event, self._new_prices
        for event in events:
            on_market(event)
            if event.HasField("trade"):
                trades.append(event)
                new_prices[event.symbol] = event.trade.price
            elif event.HasField("mark_price"):  # the venue's margin only: not the market's freshness
                continue
            last_event[event.symbol] = now
        walked = self._bar_moves(bars, now) if self._bar_fills and bars else None
        self.bars.on_bars(bars, walked)
        self.bars.on_trades(trades, now)
        if bars and self.screens is not None:
            self.screens.on_bars(bars)
        self._evaluated(self.detect.feed(self.settings.venue, events, now, bars), now)
        if bars and self.regimes is not None:
            self._regimes(self.regimes.on_bars(bars), now)
        self._hear(now)
        self._stepping = None
        if not self.tape.curve and self._priced():
            self._sample(now)
            self.next_sample_ns = now + self.settings.sample_ns
        self.tape.events += len(events) + len(bars)
        self.tape.data_ns = now

    def _bar_moves(self, bars: Sequence[bus.Bar], now: int) -> list[BarPrices | None]:
        """The bars the venue fills on walked; each bar's prices as walked (None: not walked),
        for the advisor's bars (BarKeeper.on_bars: the same Decimals, not made again)."""
        fills, on_bar = self._bar_fills, self.market.on_bar
        walked: list[BarPrices | None] = []
        for bar in bars:
            if fills.get(bar.symbol) == bar.timeframe:
                prices = (Decimal(bar.open), Decimal(bar.high), Decimal(bar.low), Decimal(bar.close))
                on_bar(bar.symbol, prices, now)
                self.last_event[bar.symbol] = now
                self._new_prices[bar.symbol] = bar.close
                walked.append(prices)
            else:
                walked.append(None)
        return walked

    def advance(self, until_ns: int) -> None:
        """Everything scheduled at or before `until_ns`, in time order."""
        while True:
            due = self._next_due()
            if due > until_ns:
                return
            self._run_due(due)

    def finish(self) -> Tape:
        self.advance(self.settings.end_ns)
        self.price_lines.point(self.settings.end_ns, self.last_price)
        if not self.tape.curve or self.tape.curve[-1].ts_ns != self.settings.end_ns:
            self._sample(self.settings.end_ns)
        return self.tape

    def _next_due(self) -> int:
        now = self.tape.data_ns
        earliest = self.next_sample_ns
        due = self.market.next_due_ns()
        if due is not None and due < earliest:
            earliest = due
        due = self.detect.next_tick(now)
        if due is not None and due < earliest:
            earliest = due
        if self._checks and self._checks[0][0] < earliest:
            earliest = self._checks[0][0]
        due = self._next_timer()
        if due is not None and due < earliest:
            earliest = due
        due = self.market.next_funding_ns()
        if due is not None and due < earliest:
            earliest = due
        due = None if self.screens is None else self.screens.next_due()
        if due is not None and due < earliest:
            earliest = due
        due = self._next_mark(now)
        return due if due is not None and due < earliest else earliest

    def _run_due(self, due: int) -> None:
        for answered_ns, answer in self.market.answers_due(due):
            self.inspect.answer(answer.order, answered_ns, answer.amended_from)
        for arrival_ns, execution in self.market.advance(due):
            self._execution(execution, arrival_ns)
        timer = self._next_timer()
        if timer is not None and timer <= due:
            self.inspect.timer(due)
        checks = self._checks
        while checks and checks[0][0] <= due:
            _, _, intent, view = heapq.heappop(checks)
            self._check(intent, view, due)
        tick = self.detect.next_tick(due - 1)
        if tick is not None and tick <= due:
            self._evaluated(self.detect.tick(), due)
            if due != self._stepping:  # a step at the same time hears after its events
                self._hear(due)
        screen = None if self.screens is None else self.screens.next_due()
        if screen is not None and screen <= due:
            assert self.screens is not None
            self._screened(self.screens.evaluate_due(due, self._ticker), due)
        mark = self._next_mark(due - 1)
        if mark is not None and mark <= due:
            self._mark(due)
            self._moved = False
            self.next_mark_ns += _MARK_NS
        funding = self.market.next_funding_ns()
        if funding is not None and funding <= due:
            self._fund(due)
        if self.next_sample_ns <= due:
            self._sample(due)
            self.next_sample_ns += self.settings.sample_ns

    # ---- the chain

    def _evaluated(self, evaluation: Evaluation, now_ns: int) -> None:
        if self.muted and evaluation.signals:
            kept = [s for s in evaluation.signals if s.patch_id not in self.muted]
            self.tape.signals_muted += len(evaluation.signals) - len(kept)
            evaluation.signals = kept
        for emitted in evaluation.signals:
            message = signal_to_pb(emitted)
            self.tape.signals.append(message)
            decision = self.advise.decide(message, now_ns)
            self.tape.decided(message, decision)
            if decision.HasField("intent"):
                self._intent(decision.intent, now_ns)
        for asked in evaluation.positions:
            self._request(position_to_pb(asked), now_ns)

    def _request(self, request: sig.PositionRequest, now_ns: int) -> None:
        """A strategy's own request, as the live inspector carries it out
        (trademesh.core.inspector.request_shell)."""
        self.tape.requests.append(request)
        planned = plan_request(self.inspect.core, request, now_ns)
        if planned.refusal is not None:
            self.tape.refusals.append(planned.refusal)
        for intent in planned.intents:
            self.inspect.desk.timing.intent(intent)
            self._check(intent, self._view(intent.symbol), now_ns)
            if not self.tape.verdicts[-1].allowed:
                return

    def _hear(self, now_ns: int) -> None:
        """What the strategies hear back from the inspector after a detector step: what changed,
        fed and evaluated at that time."""
        feedback, inspect = self.feedback, self.inspect
        if not feedback.listening or not feedback.due(inspect.entries, now_ns, inspect.still_from_ns):
            return
        core = inspect.core
        events = feedback.tracker.changes(risk_values_of(core, now_ns), held_of(core), now_ns)
        if not events:
            return
        self.tape.heard.append((now_ns, events))
        engine = self.detect.engine
        for event in events:
            engine.feed("", event)
        self._evaluated(engine.evaluate_due(now_ns), now_ns)
        if self.screens is not None and self.screens.leaving:
            self._screened(self.screens.settle(now_ns), now_ns)

    def _screened(self, changes: list[tuple[Strategy, RosterChange]], now_ns: int) -> None:
        """Patches retired and started as the screens' sets changed (trademesh.core.backtest.screens)."""
        screens = self.screens
        assert screens is not None
        for strategy, change in changes:
            venue = strategy.venues[0]
            for symbol in change.retire:
                self.detect.retire(patch_id(strategy, venue, symbol), now_ns)
            for symbol in change.start:
                self.detect.start(strategy, symbol, now_ns, screens.history.history(symbol))
            self.tape.screens.append((strategy.id, change))
        self.muted = screens.muted()

    def _position_open(self, strategy: str, symbol: str) -> bool | None:
        """Whether the strategy holds a position there, as the inspector last said it (heard back)."""
        share = self.feedback.tracker.share(strategy, self.settings.venue, symbol)
        return None if share is None else share != 0

    def _ticker(self, symbol: str) -> Ticker | None:
        """The replayed book's top as a ticker, for a screen reading one (trademesh.core.backtest.screens)."""
        if symbol not in self.instruments:
            return None
        bid, ask = self._best(symbol)
        return book_ticker(self.last_event.get(symbol, 0), bid, ask)

    def warm_regimes(self, bars: Sequence[bus.Bar]) -> None:
        """The regimes as of the start, from the 1m bars closed before it: told to the patches
        (kept by the engine: a patch activated after hears them then)."""
        if self.regimes is None:
            return
        for value in self.regimes.warm(bars):
            self.detect.engine.feed(value.venue, value)

    def _regimes(self, values: list[RegimeValue], now_ns: int) -> None:
        """The regime changes the step's bars made, fed and evaluated at that time."""
        if not values:
            return
        self.tape.regimes += values
        engine = self.detect.engine
        for value in values:
            engine.feed(value.venue, value)
        self._evaluated(engine.evaluate_due(now_ns), now_ns)

    def time_orders(self, timing: OrderTiming) -> None:
        """Send the inspector's orders and cancels to arrive as `timing` says (trademesh.core.backtest.twins:
        at their live twins' recorded arrivals) instead of after the order latency, and have the
        inspector hear the venue's reports and answers on them when it says (when the live one
        heard the twins')."""
        amend = self.market.amend if timing.amends_in_place else None
        self.inspect.desk = replace(self.inspect.desk, timing=timing, amend=amend)
        self.market.hear(timing.heard_at)
        self.market.answer(timing.answered_at)

    def _intent(self, intent: am.Intent, now_ns: int) -> None:
        """The inspector checks the intent against the market as of its signal's time: now, or
        when the timing says (a recorded run: when the live inspector had it)."""
        timing = self.inspect.desk.timing
        timing.intent(intent)
        view = self._view(intent.symbol)
        at = timing.check_at(intent)
        if at is not None and at > now_ns:
            self._checks_made += 1
            heapq.heappush(self._checks, (at, self._checks_made, intent, view))
            return
        self._check(intent, view, now_ns)

    def _check(self, intent: am.Intent, view: MarketView, now_ns: int) -> None:
        verdict = self.inspect.intent(intent, view, now_ns)
        self.tape.verdicts.append(verdict)
        if verdict.allowed and verdict.orders:
            order_id = verdict.orders[0].client_order_id
            self.books.allowed(intent, order_id, "", now_ns)  # no risk log: its event has no id
            self.strategy_of[order_id] = intent.strategy_id

    def _execution(self, execution: Execution, arrival_ns: int) -> None:
        self._moved = True  # our orders move the venue's book too
        self.inspect.execution(execution, arrival_ns)
        self.books.execution(execution)
        self.tape.orders.append(execution)
        fill = execution.fill
        if fill is not None:
            strategy = self._strategy(fill.client_order_id)
            fee = self._fee_in_quote(fill.symbol, fill.fee, fill.fee_asset, fill.price)
            venue = self.settings.venue
            record = FillRecord(
                fill.ts_event_ns, strategy, venue, fill.symbol, fill.side.value, fill.price, fill.size, fee
            )
            self.tape.fills.append(record)

    def _fund(self, now_ns: int) -> None:
        """The funding due: paid at the venue (its balances), posted to the books."""
        for payment in self.market.settle_funding(now_ns):
            self.books.funding(funding_payment_to_pb(payment))
            self.tape.funding.append(payment)
            self.tape.funding_recorded += self.market.funding_rate_recorded(payment.symbol, payment.ts_ns)

    def _strategy(self, client_order_id: str) -> str:
        """The strategy of an entry; a protective or flatten order is the position's ("")."""
        return self.strategy_of.get(client_order_id, "")

    def _fee_in_quote(self, symbol: str, fee: Decimal, asset: str, fill_price: Decimal) -> Decimal:
        """A fill's fee in the quote asset; an inverse contract's, in its coin, valued at the
        fill's price (as the inspector values it)."""
        instrument = self.instruments[symbol]
        if instrument.inverse and asset == instrument.settle_asset:
            return fee * fill_price
        if asset in ("", instrument.quote_asset, instrument.settle_asset):
            return fee
        price = self.last_price.get(symbol)
        return fee * price if asset == instrument.base_asset and price is not None else fee

    def _next_timer(self) -> int | None:
        """When the inspector's core asked to be woken, at the live inspector's wake-up for the
        same time in a recorded run (trademesh.core.backtest.twins)."""
        wake = self.inspect.wake_ns
        return None if wake is None else self.inspect.desk.timing.wake_at(wake)

    def _next_mark(self, now_ns: int) -> int | None:
        """The next once-a-second mark; None while the inspector holds nothing, or no event has
        come since the last mark (its prices are as marked: the live shell would feed none)."""
        if self._moved and self.inspect.holds():
            return self.next_mark_ns
        if self.next_mark_ns <= now_ns:
            self.next_mark_ns = now_ns - now_ns % _MARK_NS + _MARK_NS
        return None

    def _mark(self, now_ns: int) -> None:
        """Each held market at its mid (MarketView.mid of `_view`), else its last trade's price."""
        for symbol in self.inspect.held():
            bid, ask = self.market.best(symbol)
            if bid is not None and ask is not None:
                tick = self.instruments[symbol].tick_size
                price: Decimal | None = (bid * tick + ask * tick) / 2
            else:
                price = self.last_price.get(symbol)
            if price is not None:
                self.inspect.mark(symbol, price, now_ns)
        self.inspect.margin(now_ns)  # with the marks, as the live shell reads it every second

    # ---- what the venue shows

    def _position(self, symbol: str) -> Decimal:
        return sum((p.size for p in self.market.positions(symbol)), Decimal(0))

    def _find(self, client_order_id: str) -> Order | None:
        try:
            return self.market.order(client_order_id)
        except NotFound:
            return None

    def _best(self, symbol: str) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
        """The best bid and ask (price, size) at the venue, our orders included (read without
        settling the venue's book: the next event need not take its levels out again)."""
        instrument = self.instruments[symbol]
        tick, lot = instrument.tick_size, instrument.lot_size
        bid, ask = self.market.top(symbol)
        return (
            None if bid is None else (bid[0] * tick, bid[1] * lot),
            None if ask is None else (ask[0] * tick, ask[1] * lot),
        )

    def _view(self, symbol: str) -> MarketView:
        """The best bid and ask prices at the venue and the last trade's (no sizes: the
        inspector's marks and intents read prices only, once a second while it holds)."""
        tick = self.instruments[symbol].tick_size
        bid, ask = self.market.best(symbol)  # the book need not be settled for its prices
        bid_price = None if bid is None else bid * tick
        return MarketView(bid_price, None if ask is None else ask * tick, self.last_price.get(symbol))

    def _book(self, symbol: str) -> BookTop | None:
        bid, ask = self._best(symbol)
        if bid is None or ask is None:
            return None
        return BookTop(bid[0], bid[1], ask[0], ask[1], self.last_event.get(symbol, 0))

    def _open_orders(self, symbol: str) -> list[OpenOrder]:
        return [
            OpenOrder(o.order_id, o.side, o.price, o.size - o.filled_size)
            for o in self.market.open_orders()
            if o.symbol == symbol
        ]

    def _account_view(self) -> ReplayedVenueView:
        return ReplayedVenueView(
            instrument=self.instruments.get,
            book=self._book,
            positions=self.market.positions,
            balances=self.market.balances,
            open_orders=self._open_orders,
            last_event_ns=self.last_event.get,
        )

    def _sample(self, now_ns: int) -> None:
        """Equity in the quote asset at the last trade prices, and the gross exposure. The
        account is its quote cash and the base assets of the run's symbols (another asset the
        sim config holds has no price in the run: it is left out, the same at every point)."""
        equity, exposure = Decimal(0), Decimal(0)
        quotes = {i.quote_asset for i in self.instruments.values()}
        totals, sizes = self.market.holdings()
        for asset, total in totals:
            if asset in quotes:
                equity += total
                continue
            price = self._price_of(asset)
            if price is not None:
                equity += total * price
        for symbol, size in sizes:
            price = self.last_price.get(symbol)
            if price is not None:  # an inverse contract's: its face value, whatever the price
                exposure += self.instruments[symbol].notional(abs(size), price)
        self.tape.curve.append(EquityPoint(now_ns, equity, exposure))
        self._sample_strategies(now_ns)

    def _sample_strategies(self, now_ns: int) -> None:
        """Each strategy's equity in the quote asset: its PnL in the quote (a linear market's),
        and in a coin (an inverse perpetual's, settled in its base) valued at the coin's last
        price, as the account's curve values the coin it holds."""
        venue = self.settings.venue
        marks = {(venue, symbol): price for symbol, price in self.last_price.items()}
        quotes = {i.quote_asset for i in self.instruments.values()}
        pnl: dict[str, Decimal] = {}
        for (strategy, asset), line in self.books.pnl(marks).items():
            price = Decimal(1) if asset in quotes else self._price_of(asset)
            if price is not None:
                label = strategy_label(strategy)
                pnl[label] = pnl.get(label, Decimal(0)) + line.total * price
        exposure: dict[str, Decimal] = {}
        for position in self.books.positions():
            price = marks.get((position.venue, position.symbol))
            if price is not None:  # an inverse position's quantity is its face in the quote asset
                label = strategy_label(position.strategy)
                value = abs(position.quantity) if position.inverse else abs(position.quantity) * price
                exposure[label] = exposure.get(label, Decimal(0)) + value
        start = self.settings.starting_equity
        for name, curve in self.tape.strategy_curves.items():
            curve.append(
                EquityPoint(now_ns, start + pnl.get(name, Decimal(0)), exposure.get(name, Decimal(0)))
            )

    def _priced(self) -> bool:
        """Every symbol of the run has a price (the curve's first point waits for them)."""
        return all(symbol in self.last_price for symbol in self.symbols)

    def _price_of(self, asset: str) -> Decimal | None:
        for symbol in self.symbols:
            if self.instruments[symbol].base_asset == asset and symbol in self.last_price:
                return self.last_price[symbol]
        return None


def _kept(decision: am.Decision) -> am.Decision:
    """What a run keeps of a decision: its ids, outcome, times and intent."""
    kept = am.Decision(
        decision_id=decision.decision_id, signal_id=decision.signal_id, venue=decision.venue,
        symbol=decision.symbol, strategy_id=decision.strategy_id, outcome=decision.outcome,
        blocked_stage=decision.blocked_stage, block_reason=decision.block_reason,
        ts_decision_ns=decision.ts_decision_ns,
    )  # fmt: skip
    if decision.HasField("intent"):
        kept.intent.CopyFrom(decision.intent)
    return kept


class Feedback:
    """When the backtest's strategies hear the inspector again: after any change of its core (a
    journal entry), and at least once a second of data time while its risk state moves with time
    alone (a cooldown runs out: InspectorCore.still_from_ns), as the live detector polls it;
    never when no patch listens. Once heard after the state stood still, no input since, a
    hearing would tell nothing new: its risk state is not built again."""

    def __init__(self, patches: Iterable[Any], always: bool = False) -> None:
        self.listening = always or any(
            kind in ("position", "external")
            for patch in patches
            for module in patch.modules.values()
            if isinstance(module, Source)
            for kind, _, _ in module.routes()
        )
        self.tracker = FeedbackTracker()
        self._entries = -1
        self._next_ns = 0
        self._heard_ns = 0

    def due(self, entries: int, now_ns: int, still_from_ns: int) -> bool:
        if entries == self._entries and (now_ns < self._next_ns or self._heard_ns >= still_from_ns):
            return False
        self._entries, self._next_ns, self._heard_ns = entries, now_ns + _NS, now_ns
        return True


def _margin_desk(market: ReplayedMarket) -> dict[str, Any]:
    """The replayed venue's leverage and derivatives account for the inspector's shell, when its
    perpetuals are margined (docs/derivatives.md, "Margin and liquidation"); none otherwise."""
    if not market.margined:
        return {}
    return {
        "set_leverage": lambda symbol, leverage: market.set_leverage(symbol, leverage, None),
        "leverage": lambda symbol: market.leverage(symbol).leverage,
        "account": lambda: (market.positions(), market.balances(), market.leverages()),
    }
