"""A funding payment read from the venue can come before the fills that made its position (they
come through ingest and the bus): the ledger's funding follower holds it while the books hold no
position it was paid on (trademesh.core.ledger.funding.books_hold), instead of posting it to the
unattributed book."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent
from trademesh.core.ledger.engine.model import Links
from trademesh.core.ledger.funding import books_hold
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

V, PERP = "sim", "BTC/USDT:USDT"


def _fill(side: Side, size: str, n: int) -> FillEvent:
    return FillEvent(
        event_id=f"fill/{V}/{n}", venue=V, symbol=PERP, base="BTC", quote="USDT",
        instrument=InstrumentKind.PERPETUAL, side=side, price=Decimal("65000"), size=Decimal(size),
        fee=Decimal("0.1"), fee_asset="USDT", ts_ns=n, leverage=Decimal("10"),
        links=Links(event_id="", fill_id=str(n), strategy_id="carry"),
    )  # fmt: skip


def _payment(position_size: str, symbol: str = PERP) -> tf.FundingPayment:
    return tf.FundingPayment(
        funding_id="f1", symbol=symbol, asset="USDT", amount="-0.5", position_size=position_size, ts_ns=9
    )


def _post(core: LedgerCore, event: FillEvent | DepositEvent) -> None:
    posting = core.post(event)
    assert posting.refusal == "", posting.refusal


def test_a_payment_on_a_position_waits_until_the_books_hold_one() -> None:
    core = LedgerCore()
    _post(core, DepositEvent("deposit/sim/1", V, "USDT", Decimal("100000"), 1))
    assert not books_hold(core.books, V, _payment("0.01"))  # its fill not posted yet
    assert books_hold(core.books, V, _payment(""))  # the venue does not say: posted as it is
    assert books_hold(core.books, V, _payment("0"))
    assert books_hold(core.books, V, _payment("not a number"))
    _post(core, _fill(Side.BUY, "0.01", 2))
    assert books_hold(core.books, V, _payment("0.01"))
    assert books_hold(core.books, V, _payment("10"))  # contracts at the venue, base in the books
    assert not books_hold(core.books, V, _payment("0.01", symbol="ETH/USDT:USDT"))
    _post(core, _fill(Side.SELL, "0.01", 3))  # closed: nothing held
    assert not books_hold(core.books, V, _payment("0.01"))
