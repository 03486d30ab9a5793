"""The 1-week timeframe: weeks open Monday 00:00 UTC (as the exchanges' 1w candles do), in the
model, on the wire, in the sim's candles and in the bars engine; and no alignment to a
timeframe is left that skips Timeframe.open_time_ns (or its offset)."""

from __future__ import annotations

import importlib
import re
import zipfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import ccxt.pro
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.bars.checkpoint import dump_symbol, load_symbol
from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB, TIMEFRAME_TO_PB
from trademesh.core.domain.model import TIMEFRAME_LABELS, Timeframe
from trademesh.core.history.archives import ImportOptions, open_archive
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.venues.live.config import load_config
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.okx.exchange import OkxExchange
from trademesh.venues.sim.candles import CandleBook, IntCandle

S = 1_000_000_000
DAY = 86_400 * S
WEEK = 7 * DAY
ROOT = Path(__file__).resolve().parents[2]


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * S


def monday_of(ts_ns: int) -> int:
    """The week's open the calendar's way: the date's Monday at 00:00 UTC."""
    day = datetime.fromtimestamp(ts_ns // S, UTC).date()
    monday = day - timedelta(days=day.weekday())
    return utc_ns(monday.year, monday.month, monday.day)


MONDAY = utc_ns(2024, 3, 4)  # a Monday


# ---- the model


def test_sunday_23_59_59_and_monday_00_00_are_in_different_weeks() -> None:
    assert Timeframe.W1.open_time_ns(MONDAY - S) == MONDAY - WEEK
    assert Timeframe.W1.open_time_ns(MONDAY - 1) == MONDAY - WEEK
    assert Timeframe.W1.open_time_ns(MONDAY) == MONDAY
    assert Timeframe.W1.open_time_ns(MONDAY + WEEK - 1) == MONDAY


@pytest.mark.parametrize(
    ("ts", "monday"),
    [
        (utc_ns(2024, 2, 29, 12), utc_ns(2024, 2, 26)),  # a leap day, Thursday
        (utc_ns(2024, 12, 31, 23, 59, 59), utc_ns(2024, 12, 30)),  # a leap year's last second
        (utc_ns(2020, 12, 31), utc_ns(2020, 12, 28)),
        (utc_ns(2021, 1, 3, 23, 59, 59), utc_ns(2020, 12, 28)),  # a week across the new year
        (utc_ns(2100, 3, 1), utc_ns(2100, 3, 1)),  # 2100 is no leap year; 1 March 2100 is a Monday
        (0, utc_ns(1969, 12, 29)),  # the epoch, a Thursday
    ],
)
def test_a_week_opens_on_the_calendars_monday_across_leap_years(ts: int, monday: int) -> None:
    assert Timeframe.W1.open_time_ns(ts) == monday == monday_of(ts)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_102_444_800 * S))  # 1970 .. 2100
def test_every_week_opens_on_a_monday_at_midnight_utc(ts: int) -> None:
    assert Timeframe.W1.open_time_ns(ts) == monday_of(ts)


@given(st.integers(0, 2**62))
def test_the_other_timeframes_open_on_multiples_of_their_length(ts: int) -> None:
    for timeframe in Timeframe:
        if timeframe is not Timeframe.W1:
            assert timeframe.offset_ns == 0
            assert timeframe.open_time_ns(ts) == ts - ts % timeframe.ns


def test_the_week_is_labelled_1w_and_parsed_from_it() -> None:
    assert Timeframe.W1.label == "1w"
    assert Timeframe.D1.label == "1d"
    assert TIMEFRAME_LABELS[-1] == "1w"
    assert Timeframe.from_label("1w") is Timeframe.W1
    with pytest.raises(InvalidArgument, match="known: 1s, 1m, 5m, 15m, 1h, 4h, 1d, 1w"):
        Timeframe.from_label("7d")


def test_every_timeframe_round_trips_the_wire_and_the_wire_has_no_other() -> None:
    assert TIMEFRAME_TO_PB[Timeframe.W1] == common.TIMEFRAME_1_WEEK == 8
    assert all(TIMEFRAME_FROM_PB[TIMEFRAME_TO_PB[tf]] is tf for tf in Timeframe)
    assert set(TIMEFRAME_FROM_PB) == set(common.Timeframe.values()) - {common.TIMEFRAME_UNSPECIFIED}


# ---- the sim's candles

TICK, LOT = Decimal("0.01"), Decimal("0.001")


def ignore(timeframe: Timeframe, candle: IntCandle) -> None:
    pass


def test_the_sims_1w_history_regroups_its_kept_minutes_on_mondays() -> None:
    book = CandleBook(TICK, LOT, s1_entries=100)
    for ts, price in ((MONDAY - 2 * DAY, 100), (MONDAY - S, 120), (MONDAY, 90), (MONDAY + 2 * 60 * S, 95)):
        book.add_trade(ts, price, 1, ignore)
    weeks = book.history(Timeframe.W1, 0, MONDAY + WEEK, 10)
    assert [(c.open_time_ns, c.open, c.high, c.close, c.trade_count, c.closed) for c in weeks] == [
        (MONDAY - WEEK, Decimal("1.00"), Decimal("1.20"), Decimal("1.20"), 2, True),
        (MONDAY, Decimal("0.90"), Decimal("0.95"), Decimal("0.95"), 2, False),
    ]


def test_the_sims_1w_history_spans_at_most_the_kept_minutes() -> None:
    # A trade an hour: a ring of a week of hours keeps as much history as a week of busy minutes.
    book = CandleBook(TICK, LOT, s1_entries=100, m1_entries=7 * 24)
    for hour in range(-9 * 24, 24):  # nine days before this Monday to a day after
        book.add_trade(MONDAY + hour * 3600 * S, 100, 1, ignore)
    weeks = book.history(Timeframe.W1, 0, MONDAY + WEEK, 10)
    # The kept minutes reach back to hour -145: the last week's bar is what of it they hold,
    # still opening on its Monday; this week's, open, holds all of its trades.
    assert [(c.open_time_ns, c.trade_count, c.closed) for c in weeks] == [
        (MONDAY - WEEK, 145, True),
        (MONDAY, 24, False),
    ]


@st.composite
def tapes(draw: st.DrawFn) -> list[int]:
    """Trade times in order: bursts within a second, and jumps up to past a week."""
    ts = MONDAY - draw(st.integers(0, 2 * WEEK))
    out = []
    for step in draw(st.lists(st.sampled_from([0, 1, S // 3, 59 * S, 3600 * S, DAY - S, WEEK]), max_size=40)):
        ts += step
        out.append(ts)
    return out


@settings(max_examples=200, deadline=None)
@given(tapes())
def test_the_sims_candles_of_every_timeframe_are_the_group_by_of_their_trades(times: list[int]) -> None:
    book = CandleBook(TICK, LOT, s1_entries=100, m1_entries=100)
    found: dict[Timeframe, dict[int, tuple[int, int, int, int, int]]] = defaultdict(dict)

    def keep(timeframe: Timeframe, candle: IntCandle) -> None:
        c = candle
        found[timeframe][c.open_time_ns] = (c.open, c.high, c.low, c.close, c.trades)

    for n, ts in enumerate(times):
        book.add_trade(ts, 100 + n, 1, keep)
    for timeframe, candle in book.open.items():
        keep(timeframe, candle)
    expected: dict[Timeframe, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for n, ts in enumerate(times):
        for timeframe in Timeframe:
            expected[timeframe][timeframe.open_time_ns(ts)].append(100 + n)
    for timeframe in Timeframe:
        assert found[timeframe] == {
            start: (p[0], max(p), min(p), p[-1], len(p)) for start, p in expected[timeframe].items()
        }


# ---- the live venues

# Which venues serve 1w candles on the mesh's grid (ccxt's '1w', opening on Mondays): Kraken's
# 10080-minute candles open on Thursdays, Coinbase and Deribit have none.
WEEKLY = {"binance": True, "binanceusdm": True, "bybit": True, "okx": True, "okx_swap": True,
          "kraken": False, "coinbase": False, "deribit": False}  # fmt: skip


def _spec(venue: str) -> LiveSpec:
    spec: LiveSpec = importlib.import_module(f"trademesh.venues.{venue}.spec").SPEC
    return spec


@pytest.mark.parametrize("venue", sorted(WEEKLY))
def test_a_live_venue_serves_1w_candles_only_where_they_open_on_mondays(venue: str) -> None:
    spec = _spec(venue)
    exchange = (spec.exchange_class or getattr(ccxt.pro, spec.ccxt_id))({})
    assert ("1w" in exchange.timeframes and Timeframe.W1 not in spec.off_grid) is WEEKLY[venue]


def test_a_venue_whose_weeks_open_off_the_grid_refuses_a_1w_candle_stream(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text('timeframes = ["1m", "1w"]\n')
    assert load_config(_spec("binance"), path).timeframes == (Timeframe.M1, Timeframe.W1)
    with pytest.raises(InvalidArgument, match="kraken's 1w candles open off the mesh's grid"):
        load_config(_spec("kraken"), path)


def test_okx_candles_of_6h_and_more_are_asked_opening_at_utc_midnight() -> None:
    exchange = OkxExchange({})
    assert (exchange.timeframes["1w"], exchange.timeframes["1d"], exchange.timeframes["4h"]) == (
        "1Wutc",
        "1Dutc",
        "4H",
    )
    # The candle1Wutc channel's pushes land in ccxt's cache under "1w", where the stream reads them.
    assert exchange.find_timeframe("1Wutc") == "1w"
    assert exchange.options["fetchOHLCV"]["timezone"] != "UTC", "fetch_ohlcv would append a second utc"


# ---- the bars engine

ENTRY_MS = 1_800_000_000_000  # after every trade
RULES = WatermarkRules(lateness_ns=2 * S, idle_close_ns=10**15)


def trades_entry(number: int, *trades: tuple[int, str]) -> tuple[str, bus.Envelope]:
    envelope = bus.Envelope()
    for ts, trade_id in trades:
        event = envelope.market.events.add(venue="v", symbol="BTC/USDT", ts_event_ns=ts)
        event.trade.trade_id, event.trade.price, event.trade.size = trade_id, "100", "1"
    return f"{ENTRY_MS}-{number}", envelope


def week_bars(engine: VenueBars, entry: tuple[str, bus.Envelope]) -> list[tuple[int, int]]:
    output = engine.process([entry])
    return [(bar.open_time_ns, bar.trade_count) for bar in output.bars.get(Timeframe.W1, [])]


def test_the_bars_engine_closes_a_week_bar_once_monday_00_00_utc_is_passed() -> None:
    engine = VenueBars("v", RULES)
    assert week_bars(engine, trades_entry(0, (MONDAY - 3 * DAY, "1"), (MONDAY - S // 2, "2"))) == []
    # The first trade of the new week: the watermark (2 s behind it) is not yet at Monday 00:00.
    assert week_bars(engine, trades_entry(1, (MONDAY + S // 2, "3"))) == []
    assert week_bars(engine, trades_entry(2, (MONDAY + 2 * S, "4"))) == [(MONDAY - WEEK, 2)]
    # The new week's bar holds the Monday's trades.
    closed = engine.close_all().bars[Timeframe.W1]
    assert [(b.open_time_ns, b.trade_count) for b in closed] == [(MONDAY, 2)]


def test_a_checkpoint_written_before_the_week_timeframe_loads_without_its_bar() -> None:
    engine = VenueBars("v", RULES)
    engine.process([trades_entry(0, (MONDAY + S // 2, "1"), (MONDAY + 4 * S, "2"))])
    (sym,) = engine.symbols.values()
    raw = orjson.loads(dump_symbol(sym))
    raw["partials"] = raw["partials"][:-1]  # as written before 1w: one open bar fewer
    loaded = load_symbol(orjson.dumps(raw))
    assert len(loaded.partials) == len(sym.partials) and loaded.partials[-1] is None


# ---- archives

KLINE = "{open_ms},42283.58,42298.62,42283.57,42298.61,35.1,{close_ms},1480000.1,1042,10.1,400000.2,0"


@pytest.mark.parametrize("scale", [1, 1000])  # ms, and the µs of Binance's spot archives since 2025
def test_an_archive_of_1w_klines_opens_on_mondays_and_one_off_them_is_refused(
    tmp_path: Path, scale: int
) -> None:
    monday_ms = MONDAY // 10**6
    lines = [KLINE.format(open_ms=(monday_ms + n * WEEK // 10**6) * scale, close_ms=0) for n in range(2)]
    path = tmp_path / "BTCUSDT-1w-2024-03.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1w-2024-03.csv", "\n".join(lines) + "\n")
    rows = [
        line.split("\t")
        for c in open_archive(path, ImportOptions()).chunks()
        for line in c.text.decode().splitlines()
    ]
    assert [(row[2], int(row[3])) for row in rows] == [("1w", MONDAY), ("1w", MONDAY + WEEK)]
    thursday = KLINE.format(open_ms=(monday_ms + 3 * DAY // 10**6) * scale, close_ms=0)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1w-2024-03.csv", thursday + "\n")
    with pytest.raises(Corrupt, match=r"row 1: .* is not on the 1w grid"):
        list(open_archive(path, ImportOptions()).chunks())


# ---- no alignment left outside Timeframe.open_time_ns

# A `%` whose right side is a timeframe's length: by the names this code base gives them.
_BY_LENGTH = re.compile(r"%\s*\(?\s*(?:[\w.]*\.ns|[\w.]*timeframe\w*|\w*length\w*|step_ns|\w*tf_ns)\b")
# ...allowed when its left side already took the timeframe's offset off: (ts - offset) % length.
_OFFSET_FIRST = re.compile(r"-\s*[\w.]*offset\w*\s*\)\s*$")


def test_no_code_aligns_a_time_to_a_timeframe_without_its_offset() -> None:
    found = []
    for folder in ("trademesh/core", "trademesh/venues", "trademesh/gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "trademesh/core/domain/model.py" or "node_modules" in path.parts:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                code = line.split("#", 1)[0]
                for match in _BY_LENGTH.finditer(code):
                    if not _OFFSET_FIRST.search(code[: match.start()]):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "align with Timeframe.open_time_ns (weeks open on Mondays):\n" + "\n".join(found)


def test_the_scan_sees_the_manual_alignments_it_forbids() -> None:
    def flagged(code: str) -> bool:
        return any(not _OFFSET_FIRST.search(code[: m.start()]) for m in _BY_LENGTH.finditer(code))

    assert flagged("start = ts_ns - ts_ns % length_ns")
    assert flagged("start = ts - ts % timeframe.ns")
    assert flagged("first = notice.start_ns - notice.start_ns % step_ns")
    assert not flagged("start = ts_ns - (ts_ns - offset_ns) % length_ns")
    assert not flagged("tick = at_ns - at_ns % self._tick_ns")
