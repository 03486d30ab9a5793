"""Overwatch's regime classifier measured (issue 42; docs/overwatch.md, "Accuracy" and "Cost").

Accuracy: --seeds seeded synthetic series (trademesh/core/overwatch/synthetic.py: a calm warm-up range,
then --segments segments of trend up, trend down, range, high volatility and thin liquidity in
random order and lengths, 100..250 bars), each a market of one Overwatch engine driven as a
backtest drives it (bar by bar, the time given). Every bar after the warm-up range is scored
against its segment's label:

- per regime precision and recall and the confusion matrix, over all scored bars (the lag at
  each segment's start counted against it) and over the settled bars (each segment's first
  --settle bars left out: what the classifier says once its windows have seen the segment);
- the detection lag: bars from a segment's start until its regime is first the one read;
- hysteresis: regime changes per true change and regimes that lasted under 10 bars, for the
  shipped settings and with the bands and the confirm bars taken away.

The defaults were chosen on seeds 0-4; the seeds measured by default (100..119) are others.

Cost: Classifier.update (Decimal to float, every indicator, the bands) and Overwatch.on_bar (the
market's lookup too) over one market's pre-built bars: µs per bar from the process's CPU time,
the median of --repeats runs.

    .venv/bin/python bench/regime_accuracy.py                 # 20 series, the tables and costs
    .venv/bin/python bench/regime_accuracy.py --no-save --seeds 5
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from trademesh.core.advisor.synthetic import random_walk_bars
from trademesh.core.domain.regime import Classifier, ClassifierConfig, Regime
from trademesh.core.overwatch.engine import MarketKey, Overwatch, OverwatchConfig
from trademesh.core.overwatch.synthetic import LABELLED, LabelledBars, regime_series

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SHORT_BARS = 10  # a regime that lasted fewer bars than this is counted as a flap
Confusion = Counter[tuple[Regime, Regime]]  # (true, read) -> bars


def drive(series: list[LabelledBars], cfg: ClassifierConfig) -> list[list[Regime]]:
    """Every series through one engine, a market each, interleaved bar by bar as a backtest
    over several markets would, the time given the bar's close; the regime a gate would read
    after each bar."""
    engine = Overwatch(OverwatchConfig(classifier=cfg))
    keys = [MarketKey("synthetic", f"S{i}/USDT", one.bars[0].timeframe.label) for i, one in enumerate(series)]
    read: list[list[Regime]] = [[] for _ in series]
    for index in range(max(len(s.bars) for s in series)):
        for number, one in enumerate(series):
            if index < len(one.bars):
                bar, key = one.bars[index], keys[number]
                engine.on_bar(key.venue, key.symbol, bar, bar.open_time_ns + bar.timeframe.ns)
                read[number].append(engine.regime(key))
    return read


def confusion(series: list[LabelledBars], read: list[list[Regime]], settle: int) -> Confusion:
    counts: Confusion = Counter()
    for one, regimes in zip(series, read, strict=True):
        for regime, first, count in one.segments[1:]:  # the warm-up range is not scored
            for index in range(first + settle, first + count):
                counts[(regime, regimes[index])] += 1
    return counts


def scores(counts: Confusion) -> dict[str, dict[str, float]]:
    out = {}
    for regime in LABELLED:
        hits = counts[(regime, regime)]
        truths = sum(counts[(regime, r)] for r in Regime)
        reads = sum(counts[(t, regime)] for t in LABELLED)
        out[regime.value] = {
            "precision": hits / reads if reads else float("nan"),
            "recall": hits / truths if truths else float("nan"),
            "bars": truths,
        }
    total = sum(counts.values())
    out["all"] = {"accuracy": sum(counts[(r, r)] for r in LABELLED) / total, "bars": total}
    return out


def lags(series: list[LabelledBars], read: list[list[Regime]]) -> dict[str, dict[str, float]]:
    found: dict[Regime, list[int]] = {r: [] for r in LABELLED}
    missed: Counter[Regime] = Counter()
    for one, regimes in zip(series, read, strict=True):
        for regime, first, count in one.segments[1:]:
            lag = next((i for i in range(count) if regimes[first + i] is regime), None)
            if lag is None:
                missed[regime] += 1
            else:
                found[regime].append(lag)
    return {
        r.value: {
            "median": statistics.median(found[r]) if found[r] else float("nan"),
            "p90": common.percentile(found[r], 90),
            "segments": len(found[r]) + missed[r],
            "missed": missed[r],
        }
        for r in LABELLED
    }


def flapping(series: list[LabelledBars], cfg: ClassifierConfig) -> dict[str, float]:
    changes = short = 0
    for one in series:
        classifier, last = Classifier(cfg), None
        for index, bar in enumerate(one.bars):
            if classifier.update(bar).changed:
                changes += 1
                short += last is not None and index - last < SHORT_BARS
                last = index
    truth = sum(len(one.segments) for one in series)  # each segment's start, the first included
    read = drive(series, cfg)
    accuracy = scores(confusion(series, read, 0))["all"]["accuracy"]
    return {"changes_per_true_change": changes / truth, "short_regimes": short, "accuracy": accuracy}


def hysteresis(series: list[LabelledBars], cfg: ClassifierConfig) -> dict[str, dict[str, float]]:
    no_bands = replace(cfg, adx_exit=cfg.adx_enter, vol_exit=cfg.vol_enter, thin_exit=cfg.thin_enter)
    variants = {
        "shipped": cfg,
        "no bands": no_bands,
        "confirm_bars 1": replace(cfg, confirm_bars=1),
        "neither": replace(no_bands, confirm_bars=1),
        "confirm_bars 3": replace(cfg, confirm_bars=3),
        "confirm_bars 8": replace(cfg, confirm_bars=8),
    }
    return {name: flapping(series, variant) for name, variant in variants.items()}


def sim_like(seeds: int, bars: int, cfg: ClassifierConfig) -> dict[str, Any]:
    """What the classifier reads on the sim venue's kind of market: a driftless random walk
    (trademesh.core.advisor.synthetic.random_walk_bars, the sim's default volatility, 1m bars). It has no
    regime by construction; the figures say how much of it the method calls a trend (noise
    taken for one) and how often it changes its mind there."""
    shares: Counter[Regime] = Counter()
    changes, durations = 0, []
    for seed in range(seeds):
        candles = random_walk_bars(bars, seed).candles(0, bars)
        classifier, since = Classifier(cfg), None
        for index, bar in enumerate(candles):
            reading = classifier.update(bar)
            shares[reading.regime] += 1
            if reading.changed:
                changes += 1
                if since is not None:
                    durations.append(index - since)
                since = index
    total = sum(shares.values()) - shares[Regime.UNKNOWN]
    return {
        "bars": seeds * bars,
        "share": {r.value: shares[r] / total for r in LABELLED},
        "changes_per_1000_bars": 1000 * changes / total,
        "median_regime_bars": statistics.median(durations) if durations else float("nan"),
    }


def cost(bars: LabelledBars, cfg: ClassifierConfig, repeats: int) -> dict[str, float]:
    """µs per bar from CPU time, the median of `repeats` runs each on fresh state."""
    runs: dict[str, list[float]] = {"classifier": [], "engine": []}
    for _ in range(repeats):
        gc.collect()
        classifier = Classifier(cfg)
        start = time.process_time_ns()
        for bar in bars.bars:
            classifier.update(bar)
        runs["classifier"].append((time.process_time_ns() - start) / 1e3 / len(bars.bars))
        engine = Overwatch(OverwatchConfig(classifier=cfg))
        start = time.process_time_ns()
        for bar in bars.bars:
            engine.on_bar("synthetic", "BTC/USDT", bar, bar.open_time_ns)
        runs["engine"].append((time.process_time_ns() - start) / 1e3 / len(bars.bars))
    return {
        f"{name}_us_per_bar_{stat}": fn(values)
        for name, values in runs.items()
        for stat, fn in (("median", statistics.median), ("min", min), ("max", max))
    }


def _table(counts: Confusion, title: str) -> None:
    result = scores(counts)
    print(f"\n{title}: accuracy {result['all']['accuracy']:.3f} over {result['all']['bars']:,} bars\n")
    heads = [r.value for r in (*LABELLED, Regime.UNKNOWN)]
    print("| true \\ read | " + " | ".join(heads) + " | precision | recall |")
    print("|---" * (len(heads) + 3) + "|")
    for regime in LABELLED:
        cells = [f"{counts[(regime, r)]:,}" for r in (*LABELLED, Regime.UNKNOWN)]
        row = result[regime.value]
        print(
            f"| {regime.value} | " + " | ".join(cells) + f" | {row['precision']:.3f} | {row['recall']:.3f} |"
        )


def _print(result: dict[str, Any]) -> None:
    _table(Counter({_pair(k): v for k, v in result["confusion_all"].items()}), "All scored bars")
    settled = result["confusion_settled"]
    _table(
        Counter({_pair(k): v for k, v in settled.items()}),
        f"Settled bars (first {result['settle']} left out)",
    )
    print("\nDetection lag (bars from a segment's start to its regime first read)\n")
    print("| regime | median | p90 | segments | missed |\n|---|---|---|---|---|")
    for name, row in result["lag"].items():
        print(f"| {name} | {row['median']:.0f} | {row['p90']:.0f} | {row['segments']} | {row['missed']} |")
    print("\nHysteresis (changes per true change; regimes lasting under 10 bars; accuracy)\n")
    print("| settings | changes / true change | short regimes | accuracy |\n|---|---|---|---|")
    for name, row in result["hysteresis"].items():
        per_change, short, accuracy = row["changes_per_true_change"], row["short_regimes"], row["accuracy"]
        print(f"| {name} | {per_change:.2f} | {short} | {accuracy:.3f} |")
    sim = result["sim_like"]
    print(f"\nThe sim's kind of market (a driftless random walk, {sim['bars']:,} 1m bars)\n")
    print("| " + " | ".join(sim["share"]) + " | changes / 1000 bars | median regime (bars) |")
    print("|---" * (len(sim["share"]) + 2) + "|")
    cells = [f"{share:.1%}" for share in sim["share"].values()]
    tail = f" | {sim['changes_per_1000_bars']:.1f} | {sim['median_regime_bars']:.0f} |"
    print("| " + " | ".join(cells) + tail)
    print("\nCost per bar (µs of CPU, median of the runs)\n")
    common.print_table(["path", "median", "min", "max"], [
        [name, result["cost"][f"{name}_us_per_bar_median"], result["cost"][f"{name}_us_per_bar_min"],
         result["cost"][f"{name}_us_per_bar_max"]]
        for name in ("classifier", "engine")
    ])  # fmt: skip


def _pair(key: str) -> tuple[Regime, Regime]:
    true, read = key.split(">")
    return Regime(true), Regime(read)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="series measured (default 20)")
    parser.add_argument("--first-seed", type=int, default=100, help="seed of the first series (default 100)")
    parser.add_argument("--segments", type=int, default=20, help="segments per series (default 20)")
    parser.add_argument("--settle", type=int, default=40, help="bars of a segment the settled table skips")
    parser.add_argument("--sim-seeds", type=int, default=3, help="random walks read (default 3)")
    parser.add_argument("--sim-bars", type=int, default=20_000, help="bars per random walk (default 20000)")
    parser.add_argument("--cost-bars", type=int, default=20_000, help="bars of the cost runs (default 20000)")
    parser.add_argument("--repeats", type=int, default=7, help="cost runs (default 7)")
    parser.add_argument("--result", default="regime_accuracy", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    started, machine = common.now_iso(), common.machine()
    cfg = ClassifierConfig()
    series = [regime_series(args.first_seed + i, args.segments) for i in range(args.seeds)]
    read = drive(series, cfg)
    long_one = regime_series(args.first_seed, segments=args.cost_bars // 175 + 1)
    result: dict[str, Any] = {
        "settle": args.settle,
        "confusion_all": {f"{t}>{r}": n for (t, r), n in confusion(series, read, 0).items()},
        "confusion_settled": {f"{t}>{r}": n for (t, r), n in confusion(series, read, args.settle).items()},
        "scores_all": scores(confusion(series, read, 0)),
        "scores_settled": scores(confusion(series, read, args.settle)),
        "lag": lags(series, read),
        "hysteresis": hysteresis(series, cfg),
        "sim_like": sim_like(args.sim_seeds, args.sim_bars, cfg),
        "cost": cost(replace(long_one, bars=long_one.bars[: args.cost_bars]), cfg, args.repeats),
    }
    _print(result)
    if not args.no_save:
        payload = {
            "benchmark": "regime_accuracy",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": vars(args),
            "classifier": asdict(cfg),
            "result": result,
        }
        print(f"\nresults: {common.write_result(args.result, payload)}")


if __name__ == "__main__":
    main()
