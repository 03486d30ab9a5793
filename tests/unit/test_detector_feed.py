"""The feed's conversion of a venue's market events to engine events (trademesh.core.detector.market's
MarketConverter over trademesh.core.detector.book): each trade in order, and per batch one BookValue per
symbol whose book changed, its top levels best first exactly as an exact model of the book
(Decimal levels, sorted by Decimal after every batch) gives them, whatever the batches."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.values import BookValue, TradeValue
from trademesh.core.detector.market import BOOK_DEPTH, MarketConverter
from trademesh.marketdata.v1 import marketdata_pb2 as md

SYMBOLS = ("BTC/USDT", "ETH/USDT")
Levels = list[tuple[str, str]]


def _levels(levels: Levels) -> list[md.BookLevel]:
    return [md.BookLevel(price=price, size=size) for price, size in levels]


def snapshot(symbol: str, ts: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    book = md.BookSnapshot(sequence=ts, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(symbol=symbol, ts_event_ns=ts, book_snapshot=book)


def delta(symbol: str, ts: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    book = md.BookDelta(sequence=ts, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(symbol=symbol, ts_event_ns=ts, book_delta=book)


def trade(symbol: str, ts: int, price: str) -> md.MarketEvent:
    body = md.Trade(trade_id=str(ts), price=price, size="0.5", taker_side=common.SIDE_BUY)
    return md.MarketEvent(symbol=symbol, ts_event_ns=ts, trade=body)


def resync(symbol: str, ts: int) -> md.MarketEvent:
    notice = md.StreamNotice(kind=md.NOTICE_KIND_RESYNC)
    return md.MarketEvent(symbol=symbol, ts_event_ns=ts, notice=notice)


def one_book(out: list[Event]) -> BookValue:
    """The one engine event of a batch, a book."""
    (book,) = out
    assert isinstance(book, BookValue)
    return book


class ExactBook:
    """The model: each side's levels by Decimal price, sorted by Decimal when read."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    def apply(self, event: md.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        update: md.BookSnapshot | md.BookDelta
        if kind == "book_snapshot":
            self.books[event.symbol] = ({}, {})
            update = event.book_snapshot
        elif kind == "book_delta" and event.symbol in self.books:
            update = event.book_delta
        else:
            if kind == "notice":
                self.books.pop(event.symbol, None)
            return
        bids, asks = self.books[event.symbol]
        for side, levels in ((bids, update.bids), (asks, update.asks)):
            for level in levels:
                price, size = Decimal(level.price), Decimal(level.size)
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def top(self, symbol: str) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids, asks = self.books[symbol]
        best_bids = sorted(bids.items(), reverse=True)[:BOOK_DEPTH]
        best_asks = sorted(asks.items())[:BOOK_DEPTH]
        return (
            tuple((float(p), float(s)) for p, s in best_bids),
            tuple((float(p), float(s)) for p, s in best_asks),
        )


def test_a_batch_gives_its_trades_in_order_then_one_book_per_changed_symbol() -> None:
    converter = MarketConverter()
    batch = [
        snapshot("BTC/USDT", 1, [("100", "1"), ("99.5", "2")], [("101", "3")]),
        trade("BTC/USDT", 2, "100.5"),
        delta("BTC/USDT", 3, [("100.25", "4")], []),
        trade("ETH/USDT", 4, "10"),
        delta("BTC/USDT", 5, [], [("101", "0")]),
    ]

    out = converter.convert(batch)

    assert [type(e) for e in out] == [TradeValue, TradeValue, BookValue]
    assert [(e.symbol, e.price) for e in out[:2] if isinstance(e, TradeValue)] == [
        ("BTC/USDT", 100.5),
        ("ETH/USDT", 10.0),
    ]
    book = out[2]
    assert book == BookValue("BTC/USDT", 5, ((100.25, 4.0), (100.0, 1.0), (99.5, 2.0)), ())


def test_deltas_before_the_first_snapshot_and_after_a_resync_are_ignored_until_a_snapshot() -> None:
    converter = MarketConverter()
    assert converter.convert([delta("BTC/USDT", 1, [("100", "1")], [])]) == []
    converter.convert([snapshot("BTC/USDT", 2, [("100", "1")], [("101", "1")])])
    assert converter.convert([resync("BTC/USDT", 3), delta("BTC/USDT", 4, [("100.5", "1")], [])]) == []
    book = one_book(converter.convert([snapshot("BTC/USDT", 5, [("99", "2")], [("102", "2")])]))
    assert book == BookValue("BTC/USDT", 5, ((99.0, 2.0),), ((102.0, 2.0),))


def test_one_price_in_two_spellings_is_one_level_and_any_zero_removes_it() -> None:
    converter = MarketConverter()
    converter.convert([snapshot("BTC/USDT", 1, [("100.10", "1"), ("100", "1")], [])])
    changed = one_book(converter.convert([delta("BTC/USDT", 2, [("100.1", "3")], [])]))
    assert changed.bids == ((100.1, 3.0), (100.0, 1.0))
    removed = one_book(converter.convert([delta("BTC/USDT", 3, [("100.100", "0.000"), ("100.0", "-0")], [])]))
    assert removed.bids == ()


def test_a_deep_book_gives_its_best_levels_up_to_the_depth() -> None:
    converter = MarketConverter()
    bids = [(f"{1000 - i}.5", "1") for i in range(80)]
    asks = [(f"{1001 + i}", "2") for i in reversed(range(80))]  # worst first: order is not trusted
    book = one_book(converter.convert([snapshot("BTC/USDT", 1, bids, asks)]))
    assert len(book.bids) == len(book.asks) == BOOK_DEPTH
    assert book.bids[0] == (1000.5, 1.0) and book.bids[-1] == (951.5, 1.0)
    assert book.asks[0] == (1001.0, 2.0) and book.asks[-1] == (1050.0, 2.0)
    after = one_book(converter.convert([delta("BTC/USDT", 2, [("1000.5", "0")], [("1000.75", "5")])]))
    assert after.bids[0] == (999.5, 1.0) and after.bids[-1] == (950.5, 1.0)
    assert after.asks[:2] == ((1000.75, 5.0), (1001.0, 2.0)) and after.asks[-1] == (1049.0, 2.0)


# Prices on a grid of 0.25 around 100, in more than one spelling in deltas; sizes include zeros
# in deltas. A snapshot is as venues send it: each price once, no empty level.
_PRICE = st.integers(360, 440).flatmap(
    lambda q: st.sampled_from([f"{q / 4:.2f}", f"{q / 4:.4f}", f"{Decimal(q) / 4}"])
)
_SIZE = st.sampled_from(["0", "0.000", "1", "2.5", "0.001", "10"])
_LEVELS = st.lists(st.tuples(_PRICE, _SIZE), max_size=4)
_SIDE = st.dictionaries(st.integers(360, 440), st.sampled_from(["1", "2.5", "0.001"]), max_size=60).map(
    lambda side: [(f"{q / 4:.2f}", size) for q, size in side.items()]
)
_SYMBOL = st.sampled_from(SYMBOLS)
_EVENT = st.one_of(
    st.tuples(st.just("snapshot"), _SYMBOL, _SIDE, _SIDE),
    *[st.tuples(st.just("delta"), _SYMBOL, _LEVELS, _LEVELS)] * 3,
    st.tuples(st.just("trade"), _SYMBOL, _PRICE, st.just([])),
    st.tuples(st.just("resync"), _SYMBOL, st.just([]), st.just([])),
)


def _event(ts: int, spec: tuple[str, str, object, object]) -> md.MarketEvent:
    kind, symbol, a, b = spec
    if kind == "trade":
        assert isinstance(a, str)
        return trade(symbol, ts, a)
    if kind == "resync":
        return resync(symbol, ts)
    assert isinstance(a, list) and isinstance(b, list)
    return (snapshot if kind == "snapshot" else delta)(symbol, ts, a, b)


@settings(max_examples=150, deadline=None)
@given(st.lists(_EVENT, max_size=60), st.lists(st.integers(1, 8), min_size=1, max_size=60))
def test_every_batch_gives_the_books_an_exact_model_gives(
    specs: list[tuple[str, str, object, object]], sizes: list[int]
) -> None:
    events = [_event(ts, spec) for ts, spec in enumerate(specs, 1)]
    converter, model, at = MarketConverter(), ExactBook(), 0
    batches = iter(sizes * len(events))
    while at < len(events):
        batch = events[at : at + next(batches)]
        at += len(batch)
        touched: dict[str, int] = {}
        for event in batch:
            model.apply(event)
            if event.WhichOneof("payload") in ("book_snapshot", "book_delta"):
                touched[event.symbol] = event.ts_event_ns
        expected_books = {
            symbol: (ts, *model.top(symbol)) for symbol, ts in touched.items() if symbol in model.books
        }
        expected_trades = [(e.symbol, float(e.trade.price)) for e in batch if e.HasField("trade")]

        out = converter.convert(batch)

        books = {e.symbol: (e.ts_event_ns, e.bids, e.asks) for e in out if isinstance(e, BookValue)}
        trades = [(e.symbol, e.price) for e in out if isinstance(e, TradeValue)]
        assert trades == expected_trades
        assert books == expected_books
