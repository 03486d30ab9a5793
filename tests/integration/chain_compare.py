"""What test_chain_parity.py and bench/chain_parity.py compare of a chain session (a shipped,
kept or live one: tests/integration/chain_mesh): the backtest of its window beside what the live
chain did. The signals: the backtest's against the live detector's. The chain (`chain_report`):
each live decision's intent (or block) against the backtest's, and each backtest order sent at a
live twin's arrival against the twin (its request, and how it ended)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from tests.integration.chain_mesh import FROM, Chain, S
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.assemble import advisor_bars, build, recorded_history
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.recorded_orders import OrderOutcome, outcomes
from trademesh.core.backtest.session import drive
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.backtest.twins import TwinArrivals, live_hearing, load_twin_arrivals
from trademesh.core.detector.config import example_strategies
from trademesh.core.domain.model import Execution, OrderRequest
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = [
    "AtTwin", "Backtested", "ChainReport", "Key", "backtested_chain", "backtested_signals", "chain_report",
    "compared", "intent", "key", "line",
]  # fmt: skip


async def backtested_signals(chain: Chain) -> tuple[list[sig.Signal], list[tuple[str, Any]]]:
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=chain.started_ns,
        end_ns=chain.cutoff_ns + S,
        database_url=chain.database,
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)  # the live detector's cut
    assert set(backtest.detect.warming) == chain.warmed_live, "the same patches start warm"
    symbols = backtest.symbols
    source = RecordedSource(config.database_url, config.venue, symbols, config.start_ns, config.end_ns)

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    tape = await drive(backtest, events())
    return list(tape.signals), history


def compared(signals: list[sig.Signal], cutoff_ns: int) -> list[sig.Signal]:
    kept = []
    for signal in signals:
        if signal.ts_signal_ns <= cutoff_ns:
            copy = sig.Signal()
            copy.CopyFrom(signal)
            copy.signal_id = ""
            kept.append(copy)
    return sorted(kept, key=lambda s: (s.ts_signal_ns, s.strategy_id, s.symbol))


def line(signal: sig.Signal) -> str:
    rules = ",".join(f"{r.name}={r.value}{'*' if r.fired else ''}" for r in signal.rules)
    return (
        f"{signal.ts_signal_ns} {signal.ts_event_ns} {signal.strategy_id} {signal.symbol} "
        f"{sig.Direction.Name(signal.direction)} {signal.conviction} {signal.score} "
        f"v{signal.patch_version} {rules}"
    )


@dataclasses.dataclass
class Backtested:
    signals: list[sig.Signal]
    decisions: list[am.Decision]
    orders: list[Execution]  # every order update the replayed venue reported
    twins: TwinArrivals  # the live twins its orders were sent at


async def backtested_chain(chain: Chain) -> Backtested:
    """The backtest of the window with the live advisor's config and `latency = "recorded"`, as
    run_recorded runs it; its advisor reads the recorded 1s bars (the bar service's, as the live
    advisor reads them: trademesh.core.backtest.assemble.run_recorded), its detector builds its own."""
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=chain.started_ns,
        end_ns=chain.cutoff_ns + S,
        database_url=chain.database,
        sim_config=chain.sim_config,
        advisor_config=chain.advisor_config,
        timeframe="1s",  # the live advisor's (chain_mesh: its --timeframe)
        latency="recorded",
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)
    backtest.bars.warm(await advisor_bars(config, backtest))
    order_ns = backtest.market.latency.order_ns
    twins = await load_twin_arrivals(
        config.database_url, config.venue, config.start_ns, config.end_ns, order_ns
    )
    backtest.time_orders(twins)
    # Our inspector hears each execution when the live one heard its twin's: the journal as the
    # recorder kept it is the one on the bus (a recording kept before it was recorded: the bus's).
    on_bus = live_hearing(jr.JournalEntry.FromString(entry) for entry in chain.journal)
    if twins.hearing is None:
        assert os.environ.get(FROM), "the recorder kept no journal"
        twins.hearing = on_bus
    assert twins.hearing == on_bus
    source = RecordedSource(
        config.database_url, config.venue, backtest.symbols, config.start_ns, config.end_ns,
        kinds=("book", "trade", "bar"), timeframes=("1s",),
    )  # fmt: skip
    detect = backtest.detect.feed
    backtest.detect.feed = lambda venue, events, now_ns, bars=(): detect(venue, events, now_ns)  # type: ignore[method-assign]

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    tape = await drive(backtest, events())
    return Backtested(list(tape.signals), list(tape.decisions), list(tape.orders), twins)


Key = tuple[int, str, str]  # a signal's event time, strategy, symbol


def key(signal: sig.Signal) -> Key:
    return signal.ts_event_ns, signal.strategy_id, signal.symbol


def intent(decision: am.Decision) -> tuple[str, ...]:
    """What is compared of a decision: its outcome; an intent's side, order type, entry, stop,
    target, size and risk amount."""
    if not decision.HasField("intent"):
        return (am.Outcome.Name(decision.outcome), decision.block_reason)
    i = decision.intent
    return (
        "intent", str(i.side), str(i.entry_type), i.entry_price, i.stop_loss, i.take_profit, i.size,
        i.risk_amount,
    )  # fmt: skip


def _request(r: OrderRequest) -> tuple[object, ...]:
    return r.side, r.type, r.price, r.size, r.trigger_price, r.reduce_only, r.time_in_force, r.post_only


def _went_on(mine: OrderOutcome, live: OrderOutcome) -> bool:
    """An order still working at the backtest's end whose fills so far are the live ones' first:
    the live session went on after the backtest's window (it ends a second after the cutoff).
    The live fills are merged per price level over the whole session, so the last of those the
    backtest's cover may be covered in part: its price, liquidity and fee asset are compared,
    and its size up to what the backtest filled."""
    if not mine.status.is_open or mine.filled_size > live.filled_size:
        return False
    left = mine.filled_size
    for index, fill in enumerate(mine.fills):
        if index >= len(live.fills):
            return False
        theirs = live.fills[index]
        if fill == theirs:
            left -= fill.size
            continue
        same_level = (fill.price, fill.liquidity, fill.fee_asset) == (
            theirs.price,
            theirs.liquidity,
            theirs.fee_asset,
        )
        return same_level and index == len(mine.fills) - 1 and fill.size == left < theirs.size
    return left == 0


class AtTwin(NamedTuple):
    """A backtest order sent at a live twin's arrival, beside the twin."""

    arrival_ns: int  # the twin's
    same_request: bool
    same_outcome: bool  # or working at the end as live so far
    line: str  # both, shown
    live_id: str  # the twin's client order id


def orders_at_twins(run: Backtested) -> list[AtTwin]:
    """Each backtest order sent at a live twin's arrival, compared with the twin."""
    firsts: dict[str, Execution] = {}
    for execution in run.orders:
        firsts.setdefault(execution.order.client_order_id, execution)
    found = outcomes(run.orders)
    out = []
    for cid, first in firsts.items():
        twin = run.twins.twin_of(cid)
        if twin is None:
            continue
        o = first.order
        mine = OrderRequest(o.symbol, o.side, o.type, o.size, o.price, o.time_in_force, o.post_only,
                            o.reduce_only, cid, o.trigger_price)  # fmt: skip
        same_request = _request(mine) == _request(twin.request)
        same_outcome = found[cid] == twin.outcome or _went_on(found[cid], twin.outcome)
        line = (
            f"{o.symbol} {cid[:12]} at {twin.arrival_ns}\n   backtest {_request(mine)} {found[cid]}"
            f"\n   live     {_request(twin.request)} {twin.outcome}"
        )
        out.append(AtTwin(twin.arrival_ns, same_request, same_outcome, line, twin.request.client_order_id))
    return out


@dataclasses.dataclass
class ChainReport:
    """The chain's comparison: what the test asserts and the bench counts."""

    signals_equal: bool  # the backtest's signals up to the cutoff are the live ones
    decisions: int  # the live decisions up to the cutoff
    untwinned: list[Key]  # live decisions the backtest has no decision for
    apart: list[tuple[Key, str]]  # the live decisions whose intent (or block) the backtest's is not
    entries: int  # live intents' orders that reached the venue in the window
    entries_untwinned: int  # of them, those the backtest sent no twin for
    orders: list[AtTwin]  # orders_at_twins, in the window


async def chain_report(chain: Chain) -> ChainReport:
    run = await backtested_chain(chain)
    live = {key(d.signal): d for d in chain.decisions if d.signal.ts_signal_ns <= chain.cutoff_ns}
    by_id = {s.signal_id: s for s in run.signals}
    replayed = {key(by_id[d.signal_id]): d for d in run.decisions if d.signal_id in by_id}
    order = sorted(live, key=lambda k: live[k].ts_decision_ns)
    apart = [
        (k, f"{k}: live {intent(live[k])} backtest {intent(replayed[k])}")
        for k in order
        if k in replayed and intent(live[k]) != intent(replayed[k])
    ]
    end_ns = chain.cutoff_ns + S
    entries = {k for k, o in run.twins.twins.items() if k[1] == "intent" and o.arrival_ns < end_ns}
    return ChainReport(
        signals_equal=compared(run.signals, chain.cutoff_ns) == compared(chain.signals, chain.cutoff_ns),
        decisions=len(live),
        untwinned=[k for k in order if k not in replayed],
        apart=apart,
        entries=len(entries),
        entries_untwinned=len(entries - run.twins.taken),
        orders=[c for c in orders_at_twins(run) if c.arrival_ns < end_ns],
    )
