"""Kraken's checksum with each side's digits kept while the side is unchanged: the same CRC as
written afresh, after any run of updates, snapshots and trims."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feed_support import new_feed
from venues.kraken.wire import SideMemo, checksum
from venues.live.wire import WireBook

DECIMALS = (2, 8)
PRICES = [f"{100 + n / 100:.2f}" for n in range(-30, 30)]
SIZES = ["0", "0.5", "1.25", "3.00000001", "0.00000001"]

level = st.tuples(st.sampled_from(PRICES), st.sampled_from(SIZES))
update = st.tuples(st.lists(level, max_size=4), st.lists(level, max_size=4), st.booleans())


Levels = list[tuple[str, str]]


@settings(max_examples=200, deadline=None)
@given(st.lists(update, min_size=1, max_size=40))
def test_a_kept_sides_digits_give_the_checksum_written_afresh(
    updates: list[tuple[Levels, Levels, bool]],
) -> None:
    book = WireBook(new_feed()[0], "BTC/USD")
    book.start([("99.99", "1")], [("100.01", "1")], 10)
    memo: SideMemo = [None, None]
    for bids, asks, restart in updates:
        bids = [(p, s) for p, s in bids if float(p) < 100]
        asks = [(p, s) for p, s in asks if float(p) > 100]
        if restart:  # a snapshot: new sides
            book.start([(p, s) for p, s in bids if s != "0"], [(p, s) for p, s in asks if s != "0"], 10)
        else:
            book.apply(bids, asks)
        assert checksum(book, DECIMALS, memo) == checksum(book, DECIMALS)
