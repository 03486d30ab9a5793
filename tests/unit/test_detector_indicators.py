"""Every indicator against a naive reference on fixed data, at every step; warm-up; incremental
== reference on random series (hypothesis); bounded memory and no pass over the window per value.

A reference recomputes each output from the whole history with a textbook formula (statistics'
exact mean/pstdev over the window slice, max/min over the slice, EMAs in closed form as
weighted sums rather than recursively), so it shares no code or scheme with the indicator.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.detector.indicators import (
    Atr,
    Bollinger,
    BookImbalance,
    Donchian,
    Ema,
    Macd,
    RealisedVol,
    Returns,
    Rsi,
    Sma,
    Spread,
    TradeFlowImbalance,
    VolumeSpike,
    Vwap,
    Wma,
    ZScore,
    _window,
)

Out = Any  # float | tuple[...] | None
Bar = tuple[float, float, float]  # high, low, close
Trade = tuple[float, float, bool | None]  # price, size, taker bought
Book = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]


# ---- fixed data: seeded walks, with a flat stretch, a run of sells, a run of zero volumes ----


def _walk(seed: int, count: int, start: float) -> list[float]:
    rng = random.Random(seed)
    prices, price = [], start
    for _ in range(count):
        price = max(1.0, round(price + rng.gauss(0.0, 1.0), 2))
        prices.append(price)
    return prices


def _closes() -> list[float]:
    first = _walk(13, 50, 100.0)
    flat = [first[-1]] * 25
    return first + flat + _walk(14, 40, first[-1])


CLOSES = _closes()


def _bars() -> list[Bar]:
    rng = random.Random(15)
    bars, prev = [], CLOSES[0]
    for close in CLOSES:
        high = round(max(prev, close) + rng.uniform(0.0, 0.8), 2)
        low = round(min(prev, close) - rng.uniform(0.0, 0.8), 2)
        bars.append((high, low, close))
        prev = close
    return bars


def _trades() -> list[Trade]:
    rng = random.Random(16)
    trades: list[Trade] = []
    for index, price in enumerate(CLOSES):
        side: bool | None = rng.choice([True, False, None])
        if 40 <= index < 60:
            side = False  # a window of only sells: the imbalance is exactly -1
        trades.append((price, round(rng.uniform(0.001, 5.0), 3), side))
    return trades


def _volumes() -> list[float]:
    rng = random.Random(17)
    volumes = [round(rng.uniform(10.0, 30.0), 1) for _ in range(40)]
    volumes[25] = 120.0  # a spike
    volumes += [0.0] * 25 + [0.0, 7.5]  # a zero baseline: 0 then inf
    volumes += [round(rng.uniform(10.0, 30.0), 1) for _ in range(20)]
    return volumes


def _books() -> list[Book]:
    rng = random.Random(18)
    books: list[Book] = []
    for index, mid in enumerate(CLOSES):
        depth = rng.randint(1, 8)
        bids = tuple((round(mid - 0.01 * (i + 1), 2), round(rng.uniform(0.1, 9.0), 2)) for i in range(depth))
        asks = tuple((round(mid + 0.01 * (i + 1), 2), round(rng.uniform(0.1, 9.0), 2)) for i in range(depth))
        books.append((bids, ()) if index == 7 else (bids, asks))
    return books


BARS = _bars()
TRADES = _trades()
VOLUMES = _volumes()
BOOKS = _books()


# ---- references ----


def _slice(values: Sequence[float], t: int, n: int) -> Sequence[float] | None:
    return values[t - n + 1 : t + 1] if t >= n - 1 else None


def sma_ref(xs: Sequence[float], n: int) -> list[Out]:
    return [None if (w := _slice(xs, t, n)) is None else statistics.mean(w) for t in range(len(xs))]


def ema_ref(xs: Sequence[float], n: int, alpha: float | None = None) -> list[Out]:
    """Closed form: (1-a)^k * seed + Σ a (1-a)^(t-j) x[j], seed = mean of the first n."""
    a = 2.0 / (n + 1) if alpha is None else alpha
    out: list[Out] = [None] * len(xs)
    if len(xs) < n:
        return out
    seed = statistics.mean(xs[:n])
    for t in range(n - 1, len(xs)):
        decayed = (1 - a) ** (t - n + 1) * seed
        out[t] = decayed + sum(a * (1 - a) ** (t - j) * xs[j] for j in range(n, t + 1))
    return out


def wma_ref(xs: Sequence[float], n: int) -> list[Out]:
    def wma(w: Sequence[float]) -> float:
        return sum((i + 1) * x for i, x in enumerate(w)) / sum(range(1, n + 1))

    return [None if (w := _slice(xs, t, n)) is None else wma(w) for t in range(len(xs))]


def rsi_ref(xs: Sequence[float], n: int) -> list[Out]:
    changes = [b - a for a, b in itertools.pairwise(xs)]
    gains = ema_ref([max(c, 0.0) for c in changes], n, 1.0 / n)
    losses = ema_ref([max(-c, 0.0) for c in changes], n, 1.0 / n)

    def rsi(gain: float, loss: float) -> float:
        if loss == 0.0:
            return 50.0 if gain == 0.0 else 100.0
        return 100.0 - 100.0 / (1.0 + gain / loss)

    return [None] + [None if g is None else rsi(g, loss) for g, loss in zip(gains, losses, strict=True)]


def macd_ref(xs: Sequence[float], fast: int, slow: int, signal: int) -> list[Out]:
    fasts, slows = ema_ref(xs, fast), ema_ref(xs, slow)
    lines = [f - s for f, s in zip(fasts, slows, strict=True) if s is not None]
    signals = ema_ref(lines, signal)
    out: list[Out] = [None] * (len(xs) - len(lines))
    out += [None if s is None else (ln, s, ln - s) for ln, s in zip(lines, signals, strict=True)]
    return out


def atr_ref(bars: Sequence[Bar], n: int) -> list[Out]:
    ranges = [
        max(h - lo, abs(h - prev_close), abs(lo - prev_close))
        for (_, _, prev_close), (h, lo, _) in itertools.pairwise(bars)
    ]
    return [None, *ema_ref(ranges, n, 1.0 / n)]


def bollinger_ref(xs: Sequence[float], n: int, k: float) -> list[Out]:
    def bands(w: Sequence[float]) -> tuple[float, float, float]:
        mean, sd = statistics.mean(w), statistics.pstdev(w)
        return mean, mean + k * sd, mean - k * sd

    return [None if (w := _slice(xs, t, n)) is None else bands(w) for t in range(len(xs))]


def donchian_ref(bars: Sequence[Bar], n: int) -> list[Out]:
    def channel(w: Sequence[Bar]) -> tuple[float, float, float]:
        upper, lower = max(b[0] for b in w), min(b[1] for b in w)
        return upper, lower, (upper + lower) / 2

    return [channel(bars[t - n + 1 : t + 1]) if t >= n - 1 else None for t in range(len(bars))]


def vwap_ref(trades: Sequence[Trade], n: int) -> list[Out]:
    def vwap(w: Sequence[Trade]) -> float | None:
        volume = sum(size for _, size, _ in w)
        return None if volume == 0 else sum(p * size for p, size, _ in w) / volume

    return [vwap(trades[t - n + 1 : t + 1]) if t >= n - 1 else None for t in range(len(trades))]


def tfi_ref(trades: Sequence[Trade], n: int) -> list[Out]:
    def tfi(w: Sequence[Trade]) -> float:
        buys = sum(size for _, size, side in w if side is True)
        sells = sum(size for _, size, side in w if side is False)
        return 0.0 if buys + sells == 0 else (buys - sells) / (buys + sells)

    return [tfi(trades[t - n + 1 : t + 1]) if t >= n - 1 else None for t in range(len(trades))]


def spike_ref(volumes: Sequence[float], n: int, factor: float) -> list[Out]:
    out: list[Out] = []
    for t, volume in enumerate(volumes):
        if t < n:
            out.append(None)
            continue
        average = statistics.mean(volumes[t - n : t])
        ratio = 0.0 if volume == 0 else (math.inf if average == 0 else volume / average)
        out.append((ratio, ratio >= factor))
    return out


def zscore_ref(xs: Sequence[float], n: int) -> list[Out]:
    def z(w: Sequence[float]) -> float:
        sd = statistics.pstdev(w)
        return 0.0 if sd == 0 else (w[-1] - statistics.mean(w)) / sd

    return [None if (w := _slice(xs, t, n)) is None else z(w) for t in range(len(xs))]


def returns_ref(xs: Sequence[float], k: int, log: bool) -> list[Out]:
    def ret(now: float, then: float) -> float:
        return math.log(now / then) if log else now / then - 1

    return [ret(xs[t], xs[t - k]) if t >= k else None for t in range(len(xs))]


def realised_vol_ref(xs: Sequence[float], n: int, per_year: float) -> list[Out]:
    logs = [math.log(b / a) for a, b in itertools.pairwise(xs)]
    out: list[Out] = [None]
    for t in range(len(logs)):
        w = _slice(logs, t, n)
        out.append(None if w is None else statistics.stdev(w) * math.sqrt(per_year))
    return out


def spread_ref(books: Sequence[Book]) -> list[Out]:
    def spread(bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]]) -> Out:
        if not bids or not asks:
            return None
        bid, ask = bids[0][0], asks[0][0]
        mid = (bid + ask) / 2
        return ask - bid, (ask - bid) / mid * 10_000, mid

    return [spread(bids, asks) for bids, asks in books]


def book_imbalance_ref(books: Sequence[Book], levels: int) -> list[Out]:
    def imbalance(bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]]) -> float:
        bid = sum(size for _, size in bids[:levels])
        ask = sum(size for _, size in asks[:levels])
        return 0.0 if bid + ask == 0 else (bid - ask) / (bid + ask)

    return [imbalance(bids, asks) for bids, asks in books]


# ---- comparing ----


def _close(got: float, want: float, abs_tol: float) -> bool:
    if isinstance(want, bool) or math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=abs_tol)


def assert_matches(got: Sequence[Out], want: Sequence[Out], abs_tol: float = 1e-12) -> None:
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None:
            assert g is None, f"step {t}: {g} before warm"
        elif isinstance(w, tuple):
            assert isinstance(g, tuple) and len(g) == len(w), f"step {t}: {g} != {w}"
            assert all(_close(a, b, abs_tol) for a, b in zip(g, w, strict=True)), f"step {t}: {g} != {w}"
        else:
            assert g is not None and _close(g, w, abs_tol), f"step {t}: {g} != {w}"


def run_values(indicator: Any, xs: Sequence[float]) -> list[Out]:
    return [indicator.update(x) for x in xs]


# Each case: name, a fresh indicator, how to feed it the fixed data, the reference's answers.
Case = tuple[str, Callable[[], Any], Callable[[Any], list[Out]], Callable[[], list[Out]]]


Feed = Callable[[Any], list[Out]]


def _values(xs: Sequence[float]) -> Feed:
    return lambda ind: run_values(ind, xs)


def _bars3(ind: Any) -> list[Out]:
    return [ind.update(h, lo, c) for h, lo, c in BARS]


def _bars2(ind: Any) -> list[Out]:
    return [ind.update(h, lo) for h, lo, _ in BARS]


def _priced(ind: Any) -> list[Out]:
    return [ind.update(p, s) for p, s, _ in TRADES]


def _sided(ind: Any) -> list[Out]:
    return [ind.update(s, side) for _, s, side in TRADES]


def _books_fed(ind: Any) -> list[Out]:
    return [ind.update(bids, asks) for bids, asks in BOOKS]


def _cases() -> list[Case]:
    values, bars3, bars2, priced, sided, books = _values, _bars3, _bars2, _priced, _sided, _books_fed
    return [
        ("sma", lambda: Sma(10), values(CLOSES), lambda: sma_ref(CLOSES, 10)),
        ("ema", lambda: Ema(10), values(CLOSES), lambda: ema_ref(CLOSES, 10)),
        ("wma", lambda: Wma(10), values(CLOSES), lambda: wma_ref(CLOSES, 10)),
        ("rsi", lambda: Rsi(14), values(CLOSES), lambda: rsi_ref(CLOSES, 14)),
        ("macd", lambda: Macd(12, 26, 9), values(CLOSES), lambda: macd_ref(CLOSES, 12, 26, 9)),
        ("atr", lambda: Atr(14), bars3, lambda: atr_ref(BARS, 14)),
        ("bollinger", lambda: Bollinger(20, 2.0), values(CLOSES), lambda: bollinger_ref(CLOSES, 20, 2.0)),
        ("donchian", lambda: Donchian(20), bars2, lambda: donchian_ref(BARS, 20)),
        ("vwap", lambda: Vwap(15), priced, lambda: vwap_ref(TRADES, 15)),
        ("zscore", lambda: ZScore(20), values(CLOSES), lambda: zscore_ref(CLOSES, 20)),
        ("returns", lambda: Returns(3), values(CLOSES), lambda: returns_ref(CLOSES, 3, log=False)),
        ("log_returns", lambda: Returns(1, log=True), values(CLOSES), lambda: returns_ref(CLOSES, 1, True)),
        (
            "realised_vol",
            lambda: RealisedVol(20, 365.0),
            values(CLOSES),
            lambda: realised_vol_ref(CLOSES, 20, 365.0),
        ),
        ("spread", Spread, books, lambda: spread_ref(BOOKS)),
        ("book_imbalance", lambda: BookImbalance(5), books, lambda: book_imbalance_ref(BOOKS, 5)),
        ("trade_flow_imbalance", lambda: TradeFlowImbalance(12), sided, lambda: tfi_ref(TRADES, 12)),
        ("volume_spike", lambda: VolumeSpike(20, 3.0), values(VOLUMES), lambda: spike_ref(VOLUMES, 20, 3.0)),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_every_step_matches_the_reference_on_fixed_data(case: Case) -> None:
    _, make, feed, reference = case
    assert_matches(feed(make()), reference())


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_the_first_output_comes_after_exactly_warmup_updates(case: Case) -> None:
    _, make, feed, _ = case
    indicator = make()
    outputs = feed(indicator)
    first = next(t for t, out in enumerate(outputs) if out is not None)
    assert first == indicator.warmup - 1
    if case[0] != "spread":  # the fixed books have one with an empty side
        assert None not in outputs[first:]


def test_the_fixed_data_reaches_the_edge_cases() -> None:
    # A constant window: sd exactly 0, bands collapse on the price, z-score 0, vol 0.
    flat_end = 50 + 25 - 1
    zscores, bands, vols = ZScore(20), Bollinger(20, 2.0), RealisedVol(20)
    z_out = run_values(zscores, CLOSES)[flat_end]
    b_out = run_values(bands, CLOSES)[flat_end]
    v_out = run_values(vols, CLOSES)[flat_end]
    assert z_out == 0.0 and v_out == 0.0
    assert b_out == (CLOSES[flat_end],) * 3
    # Only sells in the window: exactly -1, not -0.9999999.
    flows = TradeFlowImbalance(12)
    assert [flows.update(s, side) for _, s, side in TRADES][59] == -1.0
    # A zero baseline: no volume now is ratio 0, any volume is a spike.
    spikes = run_values(VolumeSpike(20, 3.0), VOLUMES)
    assert spikes[65] == (0.0, False) and spikes[66] == (math.inf, True)
    assert spikes[25] is not None and spikes[25][1] is True
    # A book with an empty side has no spread.
    assert Spread().update(BOOKS[7][0], BOOKS[7][1]) is None


def test_rsi_is_100_on_gains_only_and_50_on_a_flat_series() -> None:
    assert run_values(Rsi(3), [1.0, 2.0, 3.0, 4.0, 5.0])[-1] == 100.0
    assert run_values(Rsi(3), [7.0] * 6)[-1] == 50.0
    assert run_values(Rsi(3), [5.0, 4.0, 3.0, 2.0])[-1] == 0.0


def test_prices_at_or_below_zero_are_skipped_by_returns_and_realised_vol() -> None:
    dirty = [10.0, 11.0, 0.0, 12.1, -1.0, 13.31, 12.5]
    clean = [x for x in dirty if x > 0]
    kept = [0, 1, 3, 5, 6]
    returns = run_values(Returns(1), dirty)
    assert_matches([returns[t] for t in kept], returns_ref(clean, 1, log=False))
    assert returns[2] == returns[1] and returns[4] == returns[3]
    vols = run_values(RealisedVol(2), dirty)
    assert_matches([vols[t] for t in kept], realised_vol_ref(clean, 2, 1.0))
    assert vols[4] == vols[3] and vols[4] is not None


def test_macd_and_realised_vol_refuse_impossible_periods() -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        Macd(26, 12, 9)
    with pytest.raises(ValueError, match="at least 2"):
        RealisedVol(1)


# ---- random series: incremental == reference ----

PRICES = st.lists(st.integers(1, 10**6).map(lambda cents: cents / 100), min_size=1, max_size=120)
PERIODS = st.integers(1, 25)


@settings(max_examples=150, deadline=None)
@given(PRICES, PERIODS)
def test_windowed_averages_match_the_reference_on_random_series(xs: list[float], n: int) -> None:
    assert_matches(run_values(Sma(n), xs), sma_ref(xs, n), abs_tol=1e-9)
    assert_matches(run_values(Wma(n), xs), wma_ref(xs, n), abs_tol=1e-9)
    assert_matches(run_values(Ema(n), xs), ema_ref(xs, n), abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(PRICES, PERIODS, st.floats(0.0, 4.0))
def test_deviation_indicators_match_the_reference_on_random_series(xs: list[float], n: int, k: float) -> None:
    assert_matches(run_values(Bollinger(n, k), xs), bollinger_ref(xs, n, k), abs_tol=1e-9)
    assert_matches(run_values(ZScore(n), xs), zscore_ref(xs, n), abs_tol=1e-9)
    if n >= 2:
        got = run_values(RealisedVol(n), xs)
        assert_matches(got, realised_vol_ref(xs, n, 1.0), abs_tol=1e-12)


@settings(max_examples=150, deadline=None)
@given(PRICES, PERIODS)
def test_oscillators_and_returns_match_the_reference_on_random_series(xs: list[float], n: int) -> None:
    assert_matches(run_values(Rsi(n), xs), rsi_ref(xs, n), abs_tol=1e-9)
    assert_matches(run_values(Macd(n, n + 3, 4), xs), macd_ref(xs, n, n + 3, 4), abs_tol=1e-9)
    assert_matches(run_values(Returns(n, log=True), xs), returns_ref(xs, n, log=True), abs_tol=1e-12)


BAR_SERIES = st.lists(
    st.tuples(st.integers(1, 10**5), st.integers(0, 500), st.integers(0, 500)).map(
        lambda t: ((t[0] + t[1]) / 100, (t[0] - min(t[2], t[0] - 1)) / 100, (t[0] + t[1] // 2) / 100)
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(BAR_SERIES, PERIODS)
def test_bar_indicators_match_the_reference_on_random_bars(bars: list[Bar], n: int) -> None:
    atr = Atr(n)
    assert_matches([atr.update(*bar) for bar in bars], atr_ref(bars, n), abs_tol=1e-9)
    channel = Donchian(n)
    assert_matches([channel.update(h, lo) for h, lo, _ in bars], donchian_ref(bars, n))


TRADE_SERIES = st.lists(
    st.tuples(
        st.integers(1, 10**6).map(lambda c: c / 100),
        st.integers(0, 10**5).map(lambda s: s / 1000),
        st.sampled_from([True, False, None]),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(TRADE_SERIES, PERIODS, st.floats(1.0, 10.0))
def test_flow_indicators_match_the_reference_on_random_trades(
    trades: list[Trade], n: int, factor: float
) -> None:
    vwap, flow, spike = Vwap(n), TradeFlowImbalance(n), VolumeSpike(n, factor)
    assert_matches([vwap.update(p, s) for p, s, _ in trades], vwap_ref(trades, n), abs_tol=1e-9)
    assert_matches([flow.update(s, side) for _, s, side in trades], tfi_ref(trades, n))
    sizes = [s for _, s, _ in trades]
    got = run_values(spike, sizes)
    # The ratios match; spike is ratio >= factor on the indicator's own ratio (a reference's
    # exact 2.0 may be the indicator's 1.9999999999999998).
    want = [None if w is None else w[0] for w in spike_ref(sizes, n, factor)]
    assert_matches([None if g is None else g[0] for g in got], want)
    assert all(g is None or g[1] == (g[0] >= factor) for g in got)


# ---- O(1): bounded memory, and no pass over the window per value ----


class CountingDeque(deque[float]):
    """A deque that counts the elements read through iteration or indexing, and its longest length."""

    reads = 0
    longest = 0

    def __iter__(self) -> Any:
        CountingDeque.reads += len(self)
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        CountingDeque.reads += 1
        return super().__getitem__(index)

    def append(self, x: float) -> None:
        super().append(x)
        CountingDeque.longest = max(CountingDeque.longest, len(self))


WINDOW = 300
UPDATES = 6000


def _long_feeds() -> list[tuple[str, Callable[[], Any], Callable[[Any, int], Any], int]]:
    rng = random.Random(19)
    walk = _walk(20, UPDATES, 1000.0)
    bars = [(p + rng.uniform(0, 2), p - rng.uniform(0, 2), p) for p in walk]
    sides: list[bool | None] = [rng.choice([True, False, None]) for _ in walk]
    value = lambda ind, t: ind.update(walk[t])  # noqa: E731
    return [
        ("sma", lambda: Sma(WINDOW), value, WINDOW),
        ("ema", lambda: Ema(WINDOW), value, 0),
        ("wma", lambda: Wma(WINDOW), value, WINDOW),
        ("rsi", lambda: Rsi(WINDOW), value, 1),
        ("macd", lambda: Macd(WINDOW // 2, WINDOW, 9), value, 0),
        ("atr", lambda: Atr(WINDOW), lambda ind, t: ind.update(*bars[t]), 1),
        ("bollinger", lambda: Bollinger(WINDOW, 2.0), value, WINDOW),
        ("donchian", lambda: Donchian(WINDOW), lambda ind, t: ind.update(bars[t][0], bars[t][1]), WINDOW),
        ("vwap", lambda: Vwap(WINDOW), lambda ind, t: ind.update(walk[t], 1 + t % 7), 2 * WINDOW),
        ("zscore", lambda: ZScore(WINDOW), value, WINDOW),
        ("returns", lambda: Returns(WINDOW), value, WINDOW + 1),
        ("realised_vol", lambda: RealisedVol(WINDOW), value, WINDOW + 1),
        (
            "trade_flow_imbalance",
            lambda: TradeFlowImbalance(WINDOW),
            lambda ind, t: ind.update(1 + t % 5, sides[t]),
            2 * WINDOW,
        ),
        ("volume_spike", lambda: VolumeSpike(WINDOW, 3.0), lambda ind, t: ind.update(1 + t % 11), WINDOW),
    ]


LONG_FEEDS = _long_feeds()


@pytest.mark.parametrize("feed", LONG_FEEDS, ids=[feed[0] for feed in LONG_FEEDS])
def test_an_update_never_passes_over_the_window_and_memory_stays_bounded(
    feed: tuple[str, Callable[[], Any], Callable[[Any, int], Any], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, make, step, held_at_most = feed
    monkeypatch.setattr(_window, "deque", CountingDeque)
    monkeypatch.setattr(CountingDeque, "reads", 0)
    monkeypatch.setattr(CountingDeque, "longest", 0)
    indicator = make()
    for t in range(UPDATES):
        step(indicator, t)
    # One pass over the window per value would read WINDOW * UPDATES elements; the amortised
    # exact recomputes (once per window) and the monotonic deques' ends read a few per value.
    assert CountingDeque.reads <= 10 * UPDATES
    assert CountingDeque.longest <= WINDOW + 1
    assert indicator.held() <= held_at_most


def test_long_runs_do_not_drift_from_the_exact_window() -> None:
    xs = _walk(21, 20_237, 30_000.0)  # not a multiple of the window: between exact recomputes
    tail = xs[-500:]
    sma, wma, bands, zscore = Sma(500), Wma(500), Bollinger(500, 2.0), ZScore(500)
    for x in xs:
        mean, weighted, band, z = sma.update(x), wma.update(x), bands.update(x), zscore.update(x)
    assert mean is not None and weighted is not None and band is not None and z is not None
    assert math.isclose(mean, statistics.mean(tail), rel_tol=1e-12)
    assert math.isclose(weighted, wma_ref(tail, 500)[-1], rel_tol=1e-12)
    assert math.isclose(band[1] - band[0], 2 * statistics.pstdev(tail), rel_tol=1e-9)
    assert math.isclose(z, zscore_ref(tail, 500)[-1], rel_tol=1e-9)


def test_a_tight_window_after_an_outlier_keeps_its_precision() -> None:
    # The outlier leaves; the shifted sums would cancel to ~7 digits without an early re-anchor.
    xs = [269.76, 0.01, 0.02]
    assert_matches(run_values(ZScore(2), xs), zscore_ref(xs, 2))
    assert_matches(run_values(Bollinger(2, 2.0), xs), bollinger_ref(xs, 2, 2.0))


def test_a_flat_series_costs_no_extra_recomputes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_window, "deque", CountingDeque)
    monkeypatch.setattr(CountingDeque, "reads", 0)
    zscore = ZScore(WINDOW)
    outputs = run_values(zscore, [42.5] * UPDATES)
    assert outputs[-1] == 0.0
    # Only the periodic recomputes: 3 passes of WINDOW values per WINDOW values.
    assert CountingDeque.reads <= 3 * UPDATES


def test_negative_sizes_and_volumes_are_skipped() -> None:
    vwap = Vwap(2)
    assert [vwap.update(p, s) for p, s in [(10.0, 1.0), (20.0, 1.0), (99.0, -5.0)]] == [None, 15.0, 15.0]
    flow = TradeFlowImbalance(2)
    sided: list[tuple[float, bool | None]] = [(1.0, True), (1.0, False), (-3.0, True)]
    assert [flow.update(s, side) for s, side in sided] == [None, 0.0, 0.0]
    spike = VolumeSpike(1, 2.0)
    assert run_values(spike, [1.0, 3.0, -1.0]) == [None, (3.0, True), (3.0, True)]
