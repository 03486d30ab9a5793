"""trademesh.core.domain.book.L2Book: the wire's levels applied where they are read give the book the same
levels as tuples do."""

from __future__ import annotations

import random

from trademesh.core.domain.book import L2Book
from trademesh.marketdata.v1 import marketdata_pb2 as md

SIZES = ["0", "0.000", "-0", "1.5", "0.0010", "12", "0.", "3.25"]


def _levels(rng: random.Random) -> list[md.BookLevel]:
    return [
        md.BookLevel(price=f"{100 + rng.randrange(20)}.{rng.randrange(3)}", size=rng.choice(SIZES))
        for _ in range(rng.randrange(4))
    ]


def test_wire_levels_change_the_book_as_their_tuples_do() -> None:
    rng = random.Random(7)
    wire, tuples = L2Book(), L2Book()
    for sequence in range(1, 2000):
        bids, asks = _levels(rng), _levels(rng)
        wire.apply_wire(sequence, bids, asks)
        tuples.apply(sequence, [(lv.price, lv.size) for lv in bids], [(lv.price, lv.size) for lv in asks])
        assert (wire.sequence, wire.bids, wire.asks) == (tuples.sequence, tuples.bids, tuples.asks)
    assert wire.bids and wire.asks, "levels were kept as well as removed"


def test_a_zero_size_in_any_spelling_removes_the_level() -> None:
    book = L2Book()
    book.apply_wire(1, [md.BookLevel(price="10", size="2"), md.BookLevel(price="11", size="1")], [])
    book.apply_wire(2, [md.BookLevel(price="10", size="0.000"), md.BookLevel(price="11", size="-0")], [])
    assert (book.sequence, book.bids) == (2, {})
