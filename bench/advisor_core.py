"""The advisor's engine core alone, one thread (issue 14: signal -> intent without the LLM,
p99 < 5 ms).

An AdvisorCore with the default model and calibration decides --signals signals, each with a
context of --bars one-minute bars (700 by default: the regime's window, as the service's context
holds them; seeded synthetic bars, trademesh.core.advisor.synthetic), a book and balances, as the shell
will hand them over (a bar closing moves the window on by one, its other bars the same objects,
as the shell's refresh and a backtest's keeper keep them); the shell's time.perf_counter_ns is the
stage timer. Two runs: without the LLM (on_signal gives the decision) and with it (on_signal gives
the request; on_answer then takes a well-formed answer). Reported: the latency percentiles
of each call (wall clock per call), the process's CPU time per decision (what the core costs,
apart from waiting for a busy machine's cores), and telemetry events per decision.

    .venv/bin/python bench/advisor_core.py
    .venv/bin/python bench/advisor_core.py --signals 5000 --profile /tmp/advisor.prof
    .venv/bin/python bench/advisor_core.py --bars-every 1     # a bar closes before every signal
    .venv/bin/python bench/advisor_core.py --bars 60          # the 60-bar contexts before issue 42
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import json
import pstats
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.answer import LlmAnswer
from trademesh.core.advisor.engine.config import AdvisorConfig, SynthesisConfig, ValidationConfig
from trademesh.core.advisor.engine.context import BookTop, Context
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Pending
from trademesh.core.advisor.synthetic import regime_bars
from trademesh.core.domain.contracts.signal import Direction, RuleAttribution, Signal
from trademesh.core.domain.model import Balance, Candle, Instrument, InstrumentKind

NOW_NS = 1_767_300_000_000_000_000
ANSWER = json.dumps(
    {"bias": "long", "confidence": 0.7, "reasoning": "Momentum agrees.", "size_multiplier": 1}
)


def _context_of(bars: tuple[Candle, ...]) -> Context:
    last = bars[-1].close
    instrument = Instrument(
        "sim", "BTC/USDT", "BTCUSDT", InstrumentKind.SPOT, "BTC", "USDT", "USDT", Decimal("0.01"),
        Decimal("0.00001"), Decimal("0.00001"), Decimal("5"),
    )  # fmt: skip
    book = BookTop(last - Decimal("0.5"), Decimal("2"), last + Decimal("0.5"), Decimal("2"), NOW_NS)
    return Context(
        "sim", "BTC/USDT", NOW_NS, instrument, last, book, bars, (), (Balance("USDT", Decimal("1000000")),),
        (), (), NOW_NS - 50_000_000,
    )  # fmt: skip


def _signal(i: int) -> Signal:
    rules = (
        RuleAttribution("rsi", Decimal(1), "28.1", True),
        RuleAttribution("ema", Decimal(1), "true", True),
    )
    return Signal(
        f"s{i}", "sim", "BTC/USDT", Direction.LONG if i % 2 else Direction.SHORT, Decimal("0.8"), Decimal(2),
        Decimal("1.5"), "trend", 1, rules, NOW_NS + i, NOW_NS + i,
    )  # fmt: skip


def _percentiles(ns: list[int]) -> dict[str, float]:
    ordered = sorted(ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": ordered[-1] / 1e6,
            "mean_ms": statistics.fmean(ordered) / 1e6}  # fmt: skip


def _contexts(signals: int, bars_every: int, bars: int) -> list[Context]:
    """Each signal's context: the same one, or with `bars_every` a bar closing every that many."""
    shifts = 1 if bars_every <= 0 else signals // bars_every + 1
    candles = regime_bars(100 + bars + shifts, 3).candles(0, 100 + bars + shifts)
    made = [_context_of(candles[100 + k : 100 + bars + k]) for k in range(shifts)]
    return [made[0 if bars_every <= 0 else i // bars_every] for i in range(signals)]


def _context(bars: int = 700) -> Context:
    """One signal's context (bench/advisor_shell.py's, every signal's)."""
    return _contexts(1, 0, bars)[0]


def run(signals: int, llm: bool, bars_every: int = 0, bars: int = 700) -> dict[str, object]:
    base = AdvisorConfig(validation=ValidationConfig(cap_target_at_swing=False))
    config = base if llm else dataclasses.replace(base, synthesis=SynthesisConfig(llm_enabled=False))
    core = AdvisorCore(config, default_model(), default_calibration(), timer=time.perf_counter_ns)
    contexts = _contexts(signals, bars_every, bars)
    on_signal, on_answer, events, intents = [], [], 0, 0
    gc.collect()
    cpu_start = time.process_time_ns()
    for i in range(signals):
        sig, context = _signal(i), contexts[i]
        start = time.perf_counter_ns()
        out = core.on_signal(sig, context, NOW_NS + i)
        on_signal.append(time.perf_counter_ns() - start)
        if isinstance(out, Pending):
            start = time.perf_counter_ns()
            decision = core.on_answer(LlmAnswer(out.decision_id, "m", ANSWER, 200), NOW_NS + i)
            on_answer.append(time.perf_counter_ns() - start)
        else:
            decision = out
        intents += decision is not None and decision.intent is not None
        events += len(core.take_telemetry())
    cpu_ms = (time.process_time_ns() - cpu_start) / 1e6 / signals
    result: dict[str, object] = {
        "llm": llm, "signals": signals, "bars": bars, "bars_every": bars_every, "intents": intents,
        "cpu_ms_per_decision": round(cpu_ms, 4), "events_per_decision": events / signals,
        "on_signal": _percentiles(on_signal),
    }  # fmt: skip
    if on_answer:
        result["on_answer"] = _percentiles(on_answer)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=3000)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--bars", type=int, default=700, help="closed bars in each context (default 700)")
    parser.add_argument(
        "--bars-every", type=int, default=0,
        help="a bar closes every this many signals (the context's bars move on); 0: never",
    )  # fmt: skip
    args = parser.parse_args()
    if args.profile is not None:
        call = "run(args.signals, False, args.bars_every, args.bars)"
        cProfile.runctx(call, globals(), {"args": args}, str(args.profile))
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
        return
    for llm in (False, True):
        print(json.dumps(run(args.signals, llm, args.bars_every, args.bars)))


if __name__ == "__main__":
    main()
