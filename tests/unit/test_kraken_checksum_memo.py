"""Kraken's checksum kept for speed (Checksum: each side's bytes while its 10 best levels are
unchanged, each level's digits while it is recent): the same CRC as written afresh, after any
run of updates, snapshots and trims, with levels changing inside and outside the 10 best."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feed_support import new_feed
from trademesh.venues.kraken.wire import CHECKSUM_LEVELS, Checksum, checksum
from trademesh.venues.live.wire import WireBook

DECIMALS = (2, 8)
PRICES = [f"{100 + n / 100:.2f}" for n in range(-30, 30)]
SIZES = ["0", "0.5", "1.25", "3.00000001", "0.00000001"]

level = st.tuples(st.sampled_from(PRICES), st.sampled_from(SIZES))
update = st.tuples(st.lists(level, max_size=4), st.lists(level, max_size=4), st.booleans())


Levels = list[tuple[str, str]]


@settings(max_examples=200, deadline=None)
@given(st.lists(update, min_size=1, max_size=40), st.sampled_from([10, 14, 25]))
def test_a_kept_checksum_is_the_checksum_written_afresh(
    updates: list[tuple[Levels, Levels, bool]], depth: int
) -> None:
    book = WireBook(new_feed()[0], "BTC/USD")
    book.watch(CHECKSUM_LEVELS)
    book.start([("99.99", "1")], [("100.01", "1")], depth)
    kept = Checksum(DECIMALS)
    for bids, asks, restart in updates:
        bids = [(p, s) for p, s in bids if float(p) < 100]
        asks = [(p, s) for p, s in asks if float(p) > 100]
        if restart:  # a snapshot: new sides
            book.start([(p, s) for p, s in bids if s != "0"], [(p, s) for p, s in asks if s != "0"], depth)
        else:
            book.apply(bids, asks)
        assert kept(book) == checksum(book, DECIMALS)


def test_a_change_below_the_ten_best_keeps_the_sides_bytes() -> None:
    book = WireBook(new_feed()[0], "BTC/USD")
    book.watch(CHECKSUM_LEVELS)
    book.start([(f"{99 - n}", "1") for n in range(20)], [(f"{101 + n}", "1") for n in range(20)], 25)
    changes = book.bids.changes, book.asks.changes
    book.apply([("85", "2"), ("70", "1")], [("115", "0")])  # the 15th bid, a new 30th, the 15th ask
    assert (book.bids.changes, book.asks.changes) == changes
    book.apply([("89", "2")], [])  # the 11th bid
    assert (book.bids.changes, book.asks.changes) == changes
    book.apply([("90", "2")], [])  # the 10th bid
    assert (book.bids.changes, book.asks.changes) == (changes[0] + 1, changes[1])
    book.apply([], [("110", "0")])  # the 10th ask gone: the 11th comes in
    assert (book.bids.changes, book.asks.changes) == (changes[0] + 1, changes[1] + 1)
    assert Checksum(DECIMALS)(book) == checksum(book, DECIMALS)
