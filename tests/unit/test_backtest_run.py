"""A backtest on synthetic history through the live engine cores (trademesh.core.backtest.run): it trades,
its books agree with its fills, and the same inputs give the same results, byte for byte."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.run import Tape
from trademesh.core.backtest.session import RunProgress, drive_sync
from trademesh.core.backtest.summary import write
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.backtest.twins import OrderTiming
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.platform.errors import InvalidArgument
from trademesh.signal.v1 import signal_pb2 as sig

TREND = Path("trademesh/core/detector/strategies/trend.toml")
SPEC = Walk(steps=1800, volatility=0.001)
_S = 1_000_000_000


def config(**changes: object) -> BacktestConfig:
    base = BacktestConfig(
        strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=("BTC/USDT",), sample_s=60,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def run(settings: BacktestConfig, spec: Walk = SPEC) -> RunOutcome:
    backtest = build(settings)
    return outcome(drive_sync(backtest, walk(spec)), backtest.settings.sample_ns)


@pytest.fixture(scope="module")
def done() -> RunOutcome:
    return run(config())


def test_the_chain_trades_signals_become_decisions_intents_orders_and_fills(done: RunOutcome) -> None:
    tape = done.tape
    assert tape.events == SPEC.steps * (1 + SPEC.trades_per_step)
    assert tape.signals and len(tape.decisions) == len(tape.signals)
    intents = [d.intent for d in tape.decisions if d.HasField("intent")]
    assert intents and len(tape.verdicts) == len(intents)
    allowed = [v for v in tape.verdicts if v.allowed]
    assert allowed, "some intent passes the inspector's default policies"
    assert done.fills and done.trips
    # Every fill is of an order the inspector placed: an entry of an allowed intent, or its pair.
    entries = {v.orders[0].client_order_id for v in allowed}
    assert {f.strategy for f in done.fills} == {"trend"}
    assert entries & {e.order.client_order_id for e in tape.orders if e.fill is not None}


def test_the_ledger_books_every_fill_and_balances(done: RunOutcome) -> None:
    backtest_books = done.tape  # the run's ledger is checked through the tape's fills
    assert backtest_books.fills
    rerun = build(config())
    drive_sync(rerun, walk(SPEC))
    assert rerun.books.refused == []
    assert rerun.books.posted == len(rerun.tape.fills) + 4  # and the four opening deposits
    # The ledger's position equals the venue's net fills.
    net = sum((f.size if f.side == "buy" else -f.size for f in rerun.tape.fills), Decimal(0))
    ledger = sum((p.quantity for p in rerun.books.positions() if p.symbol == "BTC/USDT"), Decimal(0))
    assert ledger == net


def test_the_same_inputs_give_the_same_results_and_report_byte_for_byte(
    done: RunOutcome, tmp_path: Path
) -> None:
    again = run(config())
    assert [s.SerializeToString() for s in again.tape.signals] == [
        s.SerializeToString() for s in done.tape.signals
    ]
    assert [d.SerializeToString() for d in again.tape.decisions] == [
        d.SerializeToString() for d in done.tape.decisions
    ]
    assert again.tape.digest.hexdigest() == done.tape.digest.hexdigest()  # more of the decisions too
    assert again.tape.orders == done.tape.orders and again.fills == done.fills
    assert again.tape.curve == done.tape.curve and again.metrics == done.metrics
    first = write(done, config(), tmp_path / "a")
    second = write(again, config(), tmp_path / "b")
    for path in sorted(first.parent.iterdir()):
        assert path.read_bytes() == (second.parent / path.name).read_bytes(), path.name


def test_another_seed_or_latency_changes_the_results(done: RunOutcome) -> None:
    assert run(config(), replace(SPEC, seed=8)).tape.curve != done.tape.curve
    slow = run(config(order_latency_ms=900.0))
    assert [e.order.updated_ns for e in slow.tape.orders] != [e.order.updated_ns for e in done.tape.orders]


def _digest_of(decision: am.Decision) -> str:
    tape = Tape()
    tape.decided(sig.Signal(signal_id="s1", conviction="0.7"), decision)
    return str(tape.digest.hexdigest())


def test_the_digest_covers_each_decisions_outcome_intent_and_stages() -> None:
    base = am.Decision(
        decision_id="d1", signal_id="s1", outcome=am.OUTCOME_INTENT,
        intent=am.Intent(intent_id="i1", size="0.5"),
        stages=[am.StageResult(stage=am.STAGE_CONTEXT, status=am.STAGE_STATUS_PASSED)],
    )  # fmt: skip
    blocked, no_intent, resized, stage_blocked = (am.Decision() for _ in range(4))
    for changed in (blocked, no_intent, resized, stage_blocked):
        changed.CopyFrom(base)
    blocked.outcome = am.OUTCOME_BLOCKED
    no_intent.ClearField("intent")
    resized.intent.size = "0.6"
    stage_blocked.stages[0].status = am.STAGE_STATUS_BLOCKED
    same = _digest_of(base)
    assert _digest_of(am.Decision.FromString(base.SerializeToString())) == same
    assert all(_digest_of(d) != same for d in (blocked, no_intent, resized, stage_blocked))


def test_the_same_signals_decided_otherwise_change_the_runs_digest() -> None:
    """A smaller cap per intent: the detector's signals are the same, the intents' sizes not."""
    short = replace(SPEC, steps=1200)  # 20 minutes: the 1m context has its 15 bars for the ATR by 15
    end = {"end_ns": short.start_ns + short.steps * short.step_ns}
    wide = run(config(**end), short).tape
    narrow = run(config(max_notional_share=Decimal("0.002"), **end), short).tape
    assert [s.SerializeToString() for s in narrow.signals] == [s.SerializeToString() for s in wide.signals]
    sizes = [[d.intent.size for d in t.decisions if d.HasField("intent")] for t in (wide, narrow)]
    assert sizes[0] and sizes[0] != sizes[1]
    assert narrow.digest.hexdigest() != wide.digest.hexdigest()


def test_progress_reaches_the_end_with_the_events_counted() -> None:
    seen: list[RunProgress] = []
    drive_sync(build(config()), walk(replace(SPEC, steps=300)), seen.append)
    assert seen and seen[-1].done and seen[-1].fraction == 1.0
    assert seen[-1].events == 300 * (1 + SPEC.trades_per_step)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_ns": SPEC.start_ns}, "to"),
        ({"order_latency_ms": -1.0}, "order_latency_ms"),
        ({"max_notional_share": Decimal(2)}, "max_notional_share"),
        ({"timeframe": "7q"}, "timeframe"),
        ({"starting_equity": Decimal(0)}, "starting_equity"),
        ({"max_notional_share": Decimal("NaN")}, "max_notional_share"),
        ({"max_notional_share": Decimal("sNaN")}, "max_notional_share"),
        ({"starting_equity": Decimal("NaN")}, "starting_equity"),
        ({"starting_equity": Decimal("Infinity")}, "starting_equity"),
        ({"symbols": ("DOGE/USDT",)}, "symbols"),
    ],
)
def test_a_bad_option_is_refused_naming_it(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build(config(**changes))
    assert field in str(caught.value)


def test_the_account_curve_starts_once_priced_at_its_cash_and_the_runs_assets(done: RunOutcome) -> None:
    """The sim config's account (1,000,000 USDT, 10 BTC, and ETH and SOL the run has no price
    for: left out) valued at the first trade."""
    first_trade = next(e for e in walk(SPEC) if e.HasField("trade"))
    first = done.tape.curve[0]
    assert first.ts_ns == first_trade.ts_event_ns
    assert first.equity == Decimal(1_000_000) + 10 * Decimal(first_trade.trade.price)


def test_the_report_draws_the_markets_price_at_most_a_point_a_bucket(done: RunOutcome) -> None:
    """Each point is the walk's last trade before it (the prices that stood there), one a bucket
    of the range; the report draws this line, not the fills' own prices."""
    trades = [(e.ts_event_ns, Decimal(e.trade.price)) for e in walk(SPEC) if e.HasField("trade")]
    line = done.tape.prices["BTC/USDT"]
    assert 0 < len(line) <= 2000 and len(line) > len(done.fills)
    assert [t for t, _ in line] == sorted({t for t, _ in line})
    for at, price in line:
        assert price == [p for t, p in trades if t < at][-1]
    report = done.report("r", "t", {})
    assert report.prices["BTC/USDT"] == line


class _CheckLater(OrderTiming):
    """Every intent checked 3 s after its signal, as a recorded run's live decision times say."""

    def check_at(self, intent: am.Intent) -> int | None:
        return intent.ts_signal_ns + 3 * _S


def test_an_intent_is_checked_when_the_timing_says_against_the_market_at_its_signal() -> None:
    """A recorded run's inspector checks each intent when the live one had it: its entry goes
    to the venue then, not at the signal's time."""
    backtest = build(config())
    backtest.time_orders(_CheckLater())
    tape = drive_sync(backtest, walk(SPEC))
    signal_of = {d.intent.intent_id: d.intent.ts_signal_ns for d in tape.decisions if d.HasField("intent")}
    entries = {entry_order_id(i): at for i, at in signal_of.items()}
    arrived = {
        e.order.client_order_id: e.order.created_ns for e in tape.orders if e.order.client_order_id in entries
    }
    assert arrived, "some entry went to the venue"
    latency = backtest.market.latency.order_ns
    assert all(at == entries[cid] + 3 * _S + latency for cid, at in arrived.items())
    # Checked by the end: the intents whose check came before it.
    due = [at for at in signal_of.values() if at + 3 * _S <= backtest.settings.end_ns]
    assert len(tape.verdicts) == len(due)


def test_the_inspectors_timer_runs_on_the_simulated_clock_at_the_times_its_core_asks(tmp_path: Path) -> None:
    """The core asks to be woken (here: a new pair's gap is past its 1 ms bound before the
    venue's answer comes, after the order latency); the run wakes it then, on its own clock, as
    the live shell journals a timer entry."""
    policies = tmp_path / "policies.toml"
    policies.write_text("[protect]\nunprotected_max_ms = 1\n")
    backtest = build(config(policies=policies))
    woken: list[tuple[int, int | None]] = []
    timer = backtest.inspect.timer

    def wake(now_ns: int) -> None:
        woken.append((now_ns, backtest.inspect.wake_ns))
        timer(now_ns)

    backtest.inspect.timer = wake  # type: ignore[method-assign]
    drive_sync(backtest, walk(SPEC))
    assert woken, "the core asked to be woken"
    assert all(now == asked for now, asked in woken)  # at the time asked, on the run's clock
    core = backtest.inspect.core
    assert core.wake_ns is None or core.wake_ns > woken[-1][0]
