"""The bridge's books: deltas follow their snapshot without holes, repeats are dropped, holes reported."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.bridge.books import BookVerdict, BridgeBooks
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

Levels = Sequence[tuple[str, str]]


def _levels(levels: Levels) -> list[md.BookLevel]:
    return [md.BookLevel(price=p, size=s) for p, s in levels]


def snapshot(sequence: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    book = md.BookSnapshot(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=sequence, book_snapshot=book)


def delta(sequence: int, bids: Levels = (), asks: Levels = ()) -> md.MarketEvent:
    change = md.BookDelta(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=sequence, book_delta=change)


def parsed_snapshot(books: BridgeBooks) -> md.MarketEvent:
    (event,) = lv.SubscribeResponse.FromString(books.snapshot_chunk("sim", "BTC/USDT")).events
    return event


def test_deltas_that_follow_the_snapshot_pass_and_change_the_book() -> None:
    books = BridgeBooks()
    assert books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], [("101", "2")])) is BookVerdict.PASS
    assert books.delta("sim", "BTC/USDT", delta(6, [("100.5", "3")], [("101", "0")]))[0] is BookVerdict.PASS
    event = parsed_snapshot(books)
    assert event.book_snapshot.sequence == 6 and event.ts_event_ns == 6
    assert [(lv.price, lv.size) for lv in event.book_snapshot.bids] == [("100.5", "3"), ("100", "1")]
    assert list(event.book_snapshot.asks) == []


def test_a_repeated_delta_is_dropped_and_leaves_the_book_alone() -> None:
    books = BridgeBooks()
    books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], []))
    books.delta("sim", "BTC/USDT", delta(6, [("99", "1")]))
    assert books.delta("sim", "BTC/USDT", delta(6, [("99", "7")]))[0] is BookVerdict.DROP
    assert books.delta("sim", "BTC/USDT", delta(3))[0] is BookVerdict.DROP
    assert [(lv.price, lv.size) for lv in parsed_snapshot(books).book_snapshot.bids] == [
        ("100", "1"),
        ("99", "1"),
    ]


def test_a_hole_is_reported_once_and_deltas_wait_for_the_next_snapshot() -> None:
    books = BridgeBooks()
    books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], []))
    verdict, reason = books.delta("sim", "BTC/USDT", delta(8))
    assert verdict is BookVerdict.HOLE and "8 does not follow 5" in reason
    assert books.delta("sim", "BTC/USDT", delta(9))[0] is BookVerdict.DROP
    assert books.sequence("sim", "BTC/USDT") == 0 and books.snapshot_chunk("sim", "BTC/USDT") == b""
    assert books.snapshot("sim", "BTC/USDT", snapshot(20, [("90", "1")], [])) is BookVerdict.PASS
    assert books.delta("sim", "BTC/USDT", delta(21))[0] is BookVerdict.PASS
    assert books.sequence("sim", "BTC/USDT") == 21


def test_a_delta_of_a_book_never_snapshotted_is_a_hole() -> None:
    books = BridgeBooks()
    verdict, reason = books.delta("sim", "BTC/USDT", delta(3))
    assert verdict is BookVerdict.HOLE and "no snapshot" in reason
    assert list(books.usable()) == []


def test_the_same_snapshot_twice_is_dropped_but_a_different_one_replaces_the_book() -> None:
    books = BridgeBooks()
    books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], []))
    assert books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], [])) is BookVerdict.DROP
    # A restarted venue may start again at any sequence: a different book is a new snapshot.
    assert books.snapshot("sim", "BTC/USDT", snapshot(5, [("50", "1")], [])) is BookVerdict.PASS
    assert books.snapshot("sim", "BTC/USDT", snapshot(1, [("60", "1")], [])) is BookVerdict.PASS
    assert books.sequence("sim", "BTC/USDT") == 1


def test_books_are_kept_per_venue() -> None:
    books = BridgeBooks()
    books.snapshot("sim", "BTC/USDT", snapshot(5, [("100", "1")], []))
    other = snapshot(9, [("1", "1")], [])
    other.venue = "kraken"
    books.snapshot("kraken", "BTC/USDT", other)
    assert sorted(books.usable()) == [("kraken", "BTC/USDT"), ("sim", "BTC/USDT")]
    assert books.sequence("sim", "BTC/USDT") == 5 and books.sequence("kraken", "BTC/USDT") == 9


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["snapshot", "delta"]),
            st.sampled_from(["BTC/USDT", "ETH/USDT"]),
            st.integers(min_value=1, max_value=12),
            st.lists(
                st.tuples(st.sampled_from(["99", "100", "101"]), st.sampled_from(["0", "1", "2.5"])),
                max_size=3,
            ),
        ),
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_follows_agrees_with_delta_on_any_sequence_of_events(
    steps: list[tuple[str, str, int, list[tuple[str, str]]]],
) -> None:
    """The pump's one-call path (follows, then delta only when it answers None) leaves the same
    books and passes the same deltas as delta alone."""
    alone, fast = BridgeBooks(), BridgeBooks()
    for kind, symbol, sequence, levels in steps:
        if kind == "snapshot":
            event = snapshot(sequence, levels, [])
            event.symbol = symbol
            assert alone.snapshot("sim", symbol, event) is fast.snapshot("sim", symbol, event)
            continue
        event = delta(sequence, levels, levels[:1])
        event.symbol = symbol
        verdict, _ = alone.delta("sim", symbol, event)
        passed = fast.follows("sim", symbol, event)
        if passed is None:  # the books are alike: delta() judges it as it did alone
            assert fast.delta("sim", symbol, event)[0] is verdict is not BookVerdict.PASS
        else:
            assert passed == (verdict is BookVerdict.PASS)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert fast.sequence("sim", symbol) == alone.sequence("sim", symbol)
        assert fast.snapshot_chunk("sim", symbol) == alone.snapshot_chunk("sim", symbol)
