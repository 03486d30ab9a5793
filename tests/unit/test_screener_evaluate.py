"""The Screener's engine: metrics from hand-made inputs, missing and stale inputs left out and
counted, filters, both normalisations, the order and its ties, the result's times."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from decimal import Decimal

import pytest

from tests.screener_support import HOUR, NOW, bars, instrument, ticker
from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.core.screener.engine.definition import Screen, parse_screen
from trademesh.core.screener.engine.evaluate import evaluate, normalise
from trademesh.core.screener.engine.inputs import InstrumentInputs
from trademesh.core.screener.screen_file import SCREENS_DIR, load_screen


def _screen(weights: str = "momentum = 1.0", *, extra: str = "", normalise: str = "rank") -> Screen:
    text = f"""
name = "t"
venue = "sim"
top = 3
{extra}
[bars]
momentum = 2
volatility = 2
volume = 2
[score]
normalise = "{normalise}"
weights = {{ {weights} }}
"""
    return parse_screen(text, "t.toml")


def _metric(inputs: InstrumentInputs, metric: str) -> float | None:
    screen = _screen(f"{metric} = 1.0")
    return screen.meter().measure(inputs, NOW, (metric,)).values.get(metric)


# ---- metrics


def test_bar_metrics_on_hand_made_bars() -> None:
    inputs = instrument("A", [50, 100, 110, 99])
    assert _metric(inputs, "momentum") == pytest.approx(99 / 100 - 1)  # two bars back
    expected = statistics.stdev([math.log(110 / 100), math.log(99 / 110)])
    assert _metric(inputs, "volatility") == pytest.approx(expected, rel=1e-12)
    assert _metric(inputs, "bar_volume") == 2000.0  # the last two bars' quote volume


def test_ticker_metrics() -> None:
    inputs = instrument("A", tick=ticker("99.99", "100.01", size="3", volume_24h="1234.5"))
    assert _metric(inputs, "spread_bps") == pytest.approx(2.0)
    assert _metric(inputs, "top_depth") == pytest.approx(99.99 * 3)  # the thinner side
    assert _metric(inputs, "volume_24h") == 1234.5
    assert _metric(instrument("F", funding="0.0001"), "funding_rate") == 0.0001


def test_the_24h_volume_is_the_quote_volume_stated_else_the_base_volume_at_the_last_price() -> None:
    stated = ticker("99", "101", volume_24h="5000")
    assert (
        _metric(instrument("A", tick=dataclasses.replace(stated, base_volume_24h=Decimal(7))), "volume_24h")
        == 5000
    )
    base_only = dataclasses.replace(stated, volume_24h=None, base_volume_24h=Decimal(7))  # OKX's linear swaps
    assert _metric(instrument("A", tick=base_only), "volume_24h") == 7 * 101  # the last price: the ask here
    assert _metric(instrument("A", tick=dataclasses.replace(base_only, last=None)), "volume_24h") is None


@pytest.mark.parametrize(
    ("inputs", "metric"),
    [
        (instrument("A", tick=ticker(None, "1")), "spread_bps"),  # no bid
        (instrument("A", tick=ticker("101", "100")), "spread_bps"),  # a crossed book
        (instrument("A", tick=ticker("0", "1")), "spread_bps"),
        (instrument("A", tick=ticker(size=None)), "top_depth"),
        (instrument("A", tick=ticker(volume_24h=None)), "volume_24h"),
        (instrument("A", [100, 110]), "momentum"),  # 2 bars: momentum over 2 needs 3
        (instrument("A", [100, 110]), "volatility"),
        (instrument("A", [100]), "bar_volume"),
        (instrument("A", [0, 100, 110]), "momentum"),  # a price of 0
        (instrument("A"), "funding_rate"),
        (instrument("A", candles=bars([100, 110, 121], timeframe=Timeframe.M1)), "momentum"),
    ],
)
def test_a_metric_an_input_cannot_give_is_missing(inputs: InstrumentInputs, metric: str) -> None:
    measured = _screen(f"{metric} = 1.0").meter().measure(inputs, NOW, (metric,))
    assert measured.values == {} and measured.missing == {metric: "absent"}


def test_bars_not_closed_or_of_another_timeframe_are_skipped() -> None:
    hourly = bars([100, 110, 121])
    minute = bars([1, 2, 3], timeframe=Timeframe.M1)
    open_bar = bars([999], end_ns=NOW + HOUR)[0]
    open_bar = type(open_bar)(**{**open_bar.__dict__, "closed": False})
    inputs = instrument("A", candles=[*hourly[:2], minute[0], hourly[2], *minute[1:], open_bar])
    assert _metric(inputs, "momentum") == pytest.approx(0.21)


def test_inputs_too_old_are_missing_and_said_stale() -> None:
    screen = _screen("momentum = 1.0, spread_bps = 1.0")  # max_age_s: 300
    meter = screen.meter()
    old_ticker = instrument("A", [100, 110, 121], tick=ticker(ts_ns=NOW - 301 * 10**9))
    assert meter.measure(old_ticker, NOW, ("spread_bps", "momentum")).missing == {"spread_bps": "stale"}
    fresh_ticker = instrument("A", [100, 110, 121], tick=ticker(ts_ns=NOW - 300 * 10**9))
    assert meter.measure(fresh_ticker, NOW, ("spread_bps",)).missing == {}
    # The newest hourly bar closed an hour and 5 minutes ago: fresh; a second more: a bar missing.
    late = HOUR + 300 * 10**9
    assert meter.measure(
        instrument("A", candles=bars([1, 2, 3], end_ns=NOW - late)), NOW, ("momentum",)
    ).values
    stale = meter.measure(instrument("A", candles=bars([1, 2, 3], end_ns=NOW - late - 1)), NOW, ("momentum",))
    assert stale.missing == {"momentum": "stale"}


# ---- evaluation


def test_ranked_by_score_with_the_metrics_and_counts() -> None:
    screen = _screen("momentum = 1.0", extra='filters = ["spread_bps <= 5"]')
    result = evaluate(
        screen,
        [
            instrument("SLOW", [100, 100, 101]),
            instrument("FAST", [100, 100, 130]),
            instrument("MID", [100, 100, 110]),
            instrument("WIDE", [100, 100, 200], tick=ticker("99", "101")),  # 200 bps: filtered out
            instrument("NOBARS", [100]),  # left out: momentum missing
            instrument("OLD", [100, 100, 300], tick=ticker(ts_ns=NOW - HOUR)),  # stale ticker
            instrument("SPOT", [1, 1, 9], kind=InstrumentKind.SPOT, quote="USDC", active=False),
        ],
        NOW,
    )
    assert [(r.rank, r.symbol) for r in result.ranked] == [(1, "FAST"), (2, "MID"), (3, "SLOW")]
    assert [r.score for r in result.ranked] == [1.0, 0.5, 0.0]  # percentile ranks
    assert result.ranked[0].metrics == {"spread_bps": pytest.approx(2.0), "momentum": pytest.approx(0.3)}
    assert (result.universe, result.left_out, result.stale, result.filtered_out) == (6, 2, 1, 1)
    assert result.missing == {"spread_bps": 1, "momentum": 1}
    assert result.computed_ns == NOW and result.symbols == ("FAST", "MID", "SLOW")
    assert (result.oldest_input_ns, result.newest_input_ns) == (NOW, NOW)


def test_the_universe_filter() -> None:
    screen = _screen(extra='[universe]\nquote_assets = ["USDT"]\nkinds = ["spot"]\nexclude = ["B"]')
    closes = [100, 100, 110]
    result = evaluate(
        screen,
        [
            instrument("A", closes, kind=InstrumentKind.SPOT),
            instrument("B", closes, kind=InstrumentKind.SPOT),
            instrument("C", closes, kind=InstrumentKind.PERPETUAL),
            instrument("D", closes, kind=InstrumentKind.SPOT, quote="BTC"),
            instrument("E", closes, kind=InstrumentKind.SPOT, active=False),
        ],
        NOW,
    )
    assert result.symbols == ("A",) and result.universe == 1


def test_ties_are_broken_by_symbol_whatever_the_input_order() -> None:
    screen = _screen("momentum = 1.0, volatility = -1.0", normalise="zscore")
    closes = {"ETH": [100, 100, 110], "BTC": [100, 100, 110], "ADA": [100, 105, 110], "XRP": [100, 90, 95]}
    ranked = []
    for seed in range(5):
        items = [instrument(symbol, values) for symbol, values in closes.items()]
        random.Random(seed).shuffle(items)
        result = evaluate(screen, items, NOW)
        ranked.append([(r.symbol, r.score) for r in result.ranked])
    assert all(order == ranked[0] for order in ranked)
    symbols = [symbol for symbol, _ in ranked[0]]
    assert symbols.index("BTC") + 1 == symbols.index("ETH")  # same inputs, same score: by symbol
    assert ranked[0][symbols.index("BTC")][1] == ranked[0][symbols.index("ETH")][1]


def test_a_show_metric_is_reported_where_known_and_leaves_nobody_out() -> None:
    screen = _screen(extra='show = ["funding_rate"]')
    result = evaluate(screen, [instrument("A", [1, 1, 2], funding="0.0003"), instrument("B", [1, 1, 3])], NOW)
    assert [r.symbol for r in result.ranked] == ["B", "A"]
    assert result.ranked[1].metrics["funding_rate"] == 0.0003
    assert "funding_rate" not in result.ranked[0].metrics
    assert result.left_out == 0 and result.missing == {"momentum": 0}


def test_negative_weights_and_the_top() -> None:
    screen = _screen("spread_bps = -1.0")  # tightest first
    spreads = {"A": ("99.9", "100.1"), "B": ("99.99", "100.01"), "C": ("99.5", "100.5"), "D": ("99", "101")}
    items = [instrument(s, tick=ticker(bid, ask)) for s, (bid, ask) in spreads.items()]
    result = evaluate(screen, items, NOW)
    assert result.symbols == ("B", "A", "C") and len(result.ranked) == 4


def test_the_example_screen_ranks_synthetic_instruments() -> None:
    screen = load_screen(SCREENS_DIR / "momentum.toml")
    rising = [100 * 1.01**i for i in range(25)]
    falling = [100 * 0.99**i for i in range(25)]
    items = [instrument("UP/USDT", rising, funding="0.0001"), instrument("DOWN/USDT", falling)]
    items.append(instrument("THIN/USDT", rising, tick=ticker(volume_24h="10")))
    result = evaluate(screen, items, NOW)
    assert result.symbols == ("UP/USDT", "DOWN/USDT") and result.filtered_out == 1
    assert result.ranked[0].metrics["momentum"] == pytest.approx(1.01**24 - 1)


def test_a_symbol_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice"):
        evaluate(_screen(), [instrument("A", [1, 2, 3]), instrument("A", [1, 2, 3])], NOW)


def test_nothing_to_rank() -> None:
    result = evaluate(_screen(), [instrument("A", [1])], NOW)
    assert result.ranked == () and result.left_out == 1 and result.oldest_input_ns == 0


# ---- normalisation


def test_percentile_ranks_share_ties() -> None:
    assert normalise("rank", [3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert normalise("rank", [1.0, 2.0, 2.0, 5.0]) == [0.0, 0.5, 0.5, 1.0]
    assert normalise("rank", [7.0]) == [0.5]


def test_zscores() -> None:
    assert normalise("zscore", [1.0, 3.0]) == [-1.0, 1.0]
    assert normalise("zscore", [2.0, 2.0]) == [0.0, 0.0]
    assert normalise("zscore", []) == []


def test_the_result_says_from_what_inputs_times() -> None:
    screen = _screen("momentum = 1.0, spread_bps = -1.0", extra='show = ["funding_rate"]')
    older = instrument("A", [1, 1, 2], tick=ticker(ts_ns=NOW - 10 * 10**9), funding="0.0001")
    newer = instrument(
        "B", candles=bars([1, 1, 3], end_ns=NOW - 5 * 10**9), tick=ticker(ts_ns=NOW - 2 * 10**9)
    )
    result = evaluate(screen, [older, newer], NOW + 10**9)
    assert result.computed_ns == NOW + 10**9
    as_of = {row.symbol: row.as_of_ns for row in result.ranked}
    assert as_of == {"A": NOW - 10 * 10**9, "B": NOW - 5 * 10**9}  # each its oldest input
    assert (result.oldest_input_ns, result.newest_input_ns) == (NOW - 10 * 10**9, NOW)  # A: bars, funding
