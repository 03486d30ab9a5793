"""The sim matching engine against a naive price-time-priority model, plus its edge cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.domain.matching.engine import SYNTHETIC, USER, LevelChange, Match, MatchResult, OrderBook
from trademesh.core.domain.model import Side, TimeInForce
from trademesh.core.platform.errors import AlreadyExists, InvalidArgument

GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
BUY, SELL = Side.BUY, Side.SELL


# ---- a deliberately naive reference book


@dataclass
class RefOrder:
    order_id: int
    owner: int
    side: Side
    price: int
    remaining: int


@dataclass
class RefOutcome:
    fills: list[Match] = field(default_factory=list)
    rested: int = 0
    expired: int = 0
    rejected_post_only: bool = False
    fok_killed: bool = False


class RefBook:
    def __init__(self) -> None:
        self.orders: list[RefOrder] = []  # arrival order is time priority

    def reachable(self, side: Side, price: int | None) -> list[RefOrder]:
        def ok(o: RefOrder) -> bool:
            if o.side is side:
                return False
            return price is None or (o.price <= price if side is BUY else o.price >= price)

        found = [o for o in self.orders if ok(o)]
        # sorted() is stable, so equal prices keep arrival order
        return sorted(found, key=lambda o: o.price if side is BUY else -o.price)

    def submit(
        self,
        oid: int,
        owner: int,
        side: Side,
        price: int | None,
        lots: int,
        tif: TimeInForce,
        post_only: bool,
    ) -> RefOutcome:
        out = RefOutcome()
        makers = self.reachable(side, price)
        if post_only and (price is None or makers):
            out.rejected_post_only = True
            return out
        if tif is FOK and sum(o.remaining for o in makers) < lots:
            out.fok_killed, out.expired = True, lots
            return out
        for maker in makers:
            if lots == 0:
                break
            take = min(lots, maker.remaining)
            out.fills.append(Match(maker.order_id, maker.owner, oid, maker.price, take))
            maker.remaining -= take
            lots -= take
        self.orders = [o for o in self.orders if o.remaining]
        if lots and price is not None and tif is GTC:
            self.orders.append(RefOrder(oid, owner, side, price, lots))
            out.rested = lots
        else:
            out.expired = lots
        return out

    def cancel(self, oid: int) -> int:
        for o in self.orders:
            if o.order_id == oid:
                self.orders.remove(o)
                return o.remaining
        return 0

    def reduce(self, oid: int, lots: int) -> int:
        for o in self.orders:
            if o.order_id == oid:
                take = min(lots, o.remaining)
                o.remaining -= take
                if o.remaining == 0:
                    self.orders.remove(o)
                return take
        return 0

    def depth(self, side: Side) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for o in self.orders:
            if o.side is side:
                totals[o.price] = totals.get(o.price, 0) + o.remaining
        return sorted(totals.items(), reverse=side is BUY)

    def queue(self, side: Side, price: int) -> list[int]:
        return [o.order_id for o in self.orders if o.side is side and o.price == price]


# ---- operation sequences


@dataclass(frozen=True)
class Submit:
    side: Side
    price: int | None
    lots: int
    tif: TimeInForce
    post_only: bool
    owner: int


@dataclass(frozen=True)
class Cancel:
    pick: int  # reduced modulo the ids handed out so far


@dataclass(frozen=True)
class Reduce:
    pick: int  # reduced modulo the ids handed out so far
    lots: int


Op = Submit | Cancel | Reduce
Check = Callable[[OrderBook, RefBook, "MatchResult | int", "RefOutcome | int"], None]

submits = st.builds(
    Submit,
    side=st.sampled_from([BUY, SELL]),
    price=st.one_of(st.none(), st.integers(95, 105)),
    lots=st.integers(1, 12),
    tif=st.sampled_from([GTC, GTC, IOC, FOK]),
    post_only=st.booleans(),
    owner=st.sampled_from([SYNTHETIC, USER]),
)
operations = st.lists(
    st.one_of(
        submits,
        submits,
        st.builds(Cancel, st.integers(0, 200)),
        st.builds(Reduce, st.integers(0, 200), st.integers(1, 12)),
    ),
    min_size=1,
    max_size=60,
)


def step(book: OrderBook, op: Op, order_id: int) -> tuple[MatchResult | int, list[LevelChange]]:
    """Apply one op (a submit uses `order_id`); returns what it did and the level changes."""
    if isinstance(op, Submit):
        result = book.submit(order_id, op.owner, op.side, op.price, op.lots, op.tif, op.post_only)
        return result, result.changes
    if isinstance(op, Reduce):
        lots, change = book.reduce(op.pick % order_id, op.lots)
    else:
        lots, change = book.cancel(op.pick % order_id)
    return lots, [] if change is None else [change]


def run(ops: list[Op], check: Check) -> None:
    book, ref = OrderBook("T/T"), RefBook()
    for order_id, op in enumerate(ops, start=1):
        result, _ = step(book, op, order_id)
        if isinstance(op, Submit):
            expected: RefOutcome | int = ref.submit(
                order_id, op.owner, op.side, op.price, op.lots, op.tif, op.post_only
            )
        elif isinstance(op, Reduce):
            expected = ref.reduce(op.pick % order_id, op.lots)
        else:
            expected = ref.cancel(op.pick % order_id)
        check(book, ref, result, expected)


def build(ops: list[Op]) -> OrderBook:
    book = OrderBook()
    for order_id, op in enumerate(ops, start=1):
        step(book, op, order_id)
    return book


def apply_changes(copy: dict[Side, dict[int, int]], changes: list[LevelChange]) -> None:
    for side, price, total in changes:
        if total == 0:
            copy[side].pop(price, None)
        else:
            copy[side][price] = total


def depth_of(copy: dict[Side, dict[int, int]], side: Side) -> list[tuple[int, int]]:
    return sorted(copy[side].items(), reverse=side is BUY)


# ---- properties


@pytest.mark.slow  # a long property test (seconds of examples): not in the fast tier
@settings(max_examples=800, deadline=None)
@given(operations)
def test_book_agrees_with_a_naive_price_time_priority_model(ops: list[Op]) -> None:
    def check(book: OrderBook, ref: RefBook, result: MatchResult | int, expected: RefOutcome | int) -> None:
        if isinstance(result, MatchResult):
            assert isinstance(expected, RefOutcome)
            assert result.fills == expected.fills
            assert (result.rested, result.expired) == (expected.rested, expected.expired)
            assert result.rejected_post_only == expected.rejected_post_only
            assert result.fok_killed == expected.fok_killed
        else:
            assert result == expected
        for side in (BUY, SELL):
            assert book.depth(side) == ref.depth(side)
            for price, _ in ref.depth(side):
                assert [o.order_id for o in book.orders_at(side, price)] == ref.queue(side, price)

    run(ops, check)


@settings(max_examples=800, deadline=None)
@given(operations)
def test_replaying_level_changes_on_an_aggregated_copy_reproduces_depth(ops: list[Op]) -> None:
    copy: dict[Side, dict[int, int]] = {BUY: {}, SELL: {}}
    book = OrderBook()
    for order_id, op in enumerate(ops, start=1):
        _, changes = step(book, op, order_id)
        assert len({(s, p) for s, p, _ in changes}) == len(changes), "one change per level"
        apply_changes(copy, changes)
        for side in (BUY, SELL):
            assert depth_of(copy, side) == book.depth(side)
            for price, total in book.depth(side):
                assert book.level_total(side, price) == total


@settings(max_examples=800, deadline=None)
@given(operations)
def test_book_is_never_crossed(ops: list[Op]) -> None:
    def check(book: OrderBook, *_: object) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            assert bid < ask
        assert [bid] == [p for p, _ in book.depth(BUY, 1)] or (bid is None and book.depth(BUY) == [])
        assert [ask] == [p for p, _ in book.depth(SELL, 1)] or (ask is None and book.depth(SELL) == [])

    run(ops, check)


@settings(max_examples=200, deadline=None)
@given(
    operations, st.sampled_from([BUY, SELL]), st.one_of(st.none(), st.integers(95, 105)), st.integers(1, 40)
)
def test_fok_fills_completely_or_leaves_the_book_untouched(
    ops: list[Op], side: Side, price: int | None, lots: int
) -> None:
    book = build(ops)
    before = (book.depth(BUY), book.depth(SELL))
    result = book.submit(10_000, USER, side, price, lots, FOK)
    if result.fok_killed:
        assert result.fills == [] and result.changes == []
        assert (book.depth(BUY), book.depth(SELL)) == before
    else:
        assert result.filled == lots and result.expired == 0 and result.rested == 0


@settings(max_examples=200, deadline=None)
@given(operations, st.sampled_from([BUY, SELL]), st.integers(95, 105), st.integers(1, 40))
def test_post_only_never_takes_liquidity(ops: list[Op], side: Side, price: int, lots: int) -> None:
    book = build(ops)
    before = (book.depth(BUY), book.depth(SELL))
    result = book.submit(10_000, USER, side, price, lots, GTC, post_only=True)
    assert result.fills == []
    if result.rejected_post_only:
        assert (book.depth(BUY), book.depth(SELL)) == before
    else:
        assert result.rested == lots and book.level_total(side, price) >= lots


# ---- plain cases


def test_better_prices_fill_first_then_earlier_orders_at_the_same_price() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, SELL, 101, 5, GTC)
    book.submit(2, USER, SELL, 100, 3, GTC)
    book.submit(3, SYNTHETIC, SELL, 100, 4, GTC)
    result = book.submit(4, USER, BUY, 101, 10, GTC)
    assert [(f.maker_id, f.price, f.lots) for f in result.fills] == [(2, 100, 3), (3, 100, 4), (1, 101, 3)]
    assert result.changes == [(SELL, 100, 0), (SELL, 101, 2)]
    assert book.best_ask() == 101 and book.best_bid() is None


def test_market_order_never_rests_and_expires_its_remainder() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, SELL, 100, 2, GTC)
    result = book.submit(2, USER, BUY, None, 5, GTC)
    assert result.filled == 2 and result.expired == 3 and result.rested == 0
    assert book.depth(BUY) == [] and book.depth(SELL) == []


def test_ioc_limit_expires_the_unfilled_part_instead_of_resting() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, BUY, 100, 2, GTC)
    result = book.submit(2, USER, SELL, 99, 5, IOC)
    assert result.filled == 2 and result.expired == 3
    assert book.depth(SELL) == []


def test_an_order_can_match_against_the_same_owner() -> None:
    book = OrderBook()
    book.submit(1, USER, SELL, 100, 2, GTC)
    result = book.submit(2, USER, BUY, 100, 2, GTC)
    assert result.fills == [Match(1, USER, 2, 100, 2)]


def test_cancel_returns_the_lots_removed_and_the_new_level_total() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, BUY, 100, 2, GTC)
    book.submit(2, SYNTHETIC, BUY, 100, 3, GTC)
    assert book.cancel(1) == (2, (BUY, 100, 3))
    assert book.cancel(1) == (0, None)
    assert book.cancel(2) == (3, (BUY, 100, 0))
    assert book.cancel(99) == (0, None)
    assert book.best_bid() is None and len(book) == 0


def test_reduce_keeps_the_queue_position_and_a_full_reduce_is_a_cancel() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, SELL, 100, 5, GTC)
    book.submit(2, USER, SELL, 100, 1, GTC)
    assert book.reduce(1, 3) == (3, (SELL, 100, 3))
    # Order 1 is still ahead of order 2: a buy of 2 takes what is left of it, not order 2.
    result = book.submit(3, USER, BUY, 100, 2, IOC)
    assert result.fills == [Match(1, SYNTHETIC, 3, 100, 2)]
    assert book.reduce(2, 7) == (1, (SELL, 100, 0))
    assert book.reduce(2, 1) == (0, None) and book.best_ask() is None
    with pytest.raises(InvalidArgument):
        book.reduce(1, 0)


def test_matching_skips_cancelled_orders_still_queued_at_a_level() -> None:
    book = OrderBook()
    for oid in range(1, 5):
        book.submit(oid, SYNTHETIC, SELL, 100, 1, GTC)
    book.cancel(1)
    book.cancel(3)
    result = book.submit(9, USER, BUY, 100, 5, GTC)
    assert [f.maker_id for f in result.fills] == [2, 4]
    assert result.rested == 3 and book.depth(BUY) == [(100, 3)]


def test_best_prices_stay_right_and_memory_bounded_under_level_churn() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, BUY, 50, 1, GTC)
    for oid in range(2, 20_000):
        book.submit(oid, SYNTHETIC, BUY, 60 + oid % 97, 1, GTC)
        assert book.best_bid() == 60 + oid % 97
        book.cancel(oid)
    assert book.best_bid() == 50
    assert len(book._bids.heap) < 200


def test_queue_of_a_long_lived_level_is_compacted_after_many_cancels() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, SELL, 100, 1, GTC)
    for oid in range(2, 5_000):
        book.submit(oid, SYNTHETIC, SELL, 100, 1, GTC)
        book.cancel(oid)
    assert len(book._asks.levels[100].queue) < 100
    assert [o.order_id for o in book.orders_at(SELL, 100)] == [1]


def test_depth_limits_to_the_best_n_levels() -> None:
    book = OrderBook()
    for oid, price in enumerate([100, 98, 99, 97], start=1):
        book.submit(oid, SYNTHETIC, BUY, price, oid, GTC)
    assert book.depth(BUY, 2) == [(100, 1), (99, 3)]
    assert book.depth(SELL, 2) == []


def test_preview_walks_the_book_without_changing_it() -> None:
    book = OrderBook()
    book.submit(1, SYNTHETIC, SELL, 101, 5, GTC)
    book.submit(2, SYNTHETIC, SELL, 100, 3, GTC)
    assert book.preview(BUY, None, 6) == [(100, 3), (101, 3)]
    assert book.preview(BUY, 100, 6) == [(100, 3)]
    assert book.depth(SELL) == [(100, 3), (101, 5)]


@pytest.mark.parametrize("lots", [0, -1])
def test_submit_rejects_non_positive_sizes(lots: int) -> None:
    with pytest.raises(InvalidArgument):
        OrderBook().submit(1, USER, BUY, 100, lots, GTC)


def test_submit_rejects_an_order_id_that_is_already_resting() -> None:
    book = OrderBook()
    book.submit(1, USER, BUY, 100, 1, GTC)
    with pytest.raises(AlreadyExists):
        book.submit(1, USER, BUY, 99, 1, GTC)


def test_a_levels_orders_are_read_by_owner_and_its_last_live_one() -> None:
    book = OrderBook("X")
    book.submit(1, SYNTHETIC, Side.BUY, 100, 5, GTC)
    book.submit(2, USER, Side.BUY, 100, 3, GTC)
    book.submit(3, SYNTHETIC, Side.BUY, 100, 2, GTC)
    book.submit(4, SYNTHETIC, Side.BUY, 99, 1, GTC)
    assert [o.order_id for o in book.owned_at(Side.BUY, 100, SYNTHETIC)] == [1, 3]
    assert [o.order_id for o in book.owned_at(Side.BUY, 100, USER)] == [2]
    assert book.owned_at(Side.SELL, 100, SYNTHETIC) == []
    book.cancel(3)  # removed lazily from the queue: not the last one any more
    last = book.last_at(Side.BUY, 100)
    assert last is not None and last.order_id == 2
    assert book.last_at(Side.BUY, 101) is None
    assert sorted(book.prices(Side.BUY)) == [99, 100] and book.prices(Side.SELL) == []
