"""The post-trade audit of an inverse contract's order (BTC/USD:BTC, 10 USD contracts): filled
notional by face value, average fill price the harmonic mean of the fills weighted by face,
slippage against the intent's price from that average; and kept across a snapshot. A linear
contract of 0.01 BTC (OKX's BTC-USDT-SWAP) valued at size x value x price."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.events import RiskOutput
from trademesh.core.inspector.snapshot import _record_to, audit_from_snapshot
from trademesh.risk.v1 import journal_pb2 as jr

D = Decimal
INVERSE, LINEAR = "BTC/USD:BTC", "BTC/USDT:USDT"


OKX_LINEAR = "ETH/USDT:USDT"


def _face_of(venue: str, symbol: str) -> Decimal | None:
    return D(10) if symbol == INVERSE else None


def _multiplier_of(venue: str, symbol: str) -> Decimal:
    return D("0.01") if symbol == OKX_LINEAR else D(1)


def _placed(audit: Audit, coid: str, symbol: str, side: Side, size: str, asked: str) -> None:
    entry = jr.JournalEntry(now_ns=1_000)
    entry.intent.intent.entry_price = asked
    order = PlaceOrder(
        coid, "deribit", symbol, side, OrderType.LIMIT, D(size), D(asked),
        TimeInForce.GTC, False, OrderRole.ENTRY,
    )  # fmt: skip
    audit.observe(entry, RiskOutput(actions=(order,)))


def _fill(audit: Audit, coid: str, fill_id: str, size: str, price: str, fee: str = "0") -> None:
    entry = jr.JournalEntry(now_ns=2_000)
    fill = entry.fill.fill
    fill.client_order_id, fill.fill_id, fill.size, fill.price, fill.fee = coid, fill_id, size, price, fee
    fill.ts_event_ns = 2_000
    audit.observe(entry, RiskOutput())


def test_an_inverse_buy_is_valued_by_its_face_and_the_harmonic_mean_of_its_fills() -> None:
    audit = Audit(_face_of)
    _placed(audit, "a", INVERSE, Side.BUY, "300", "50000")
    _fill(audit, "a", "1", "100", "50000")  # 1000 USD: 0.02 BTC
    _fill(audit, "a", "2", "200", "40000")  # 2000 USD: 0.05 BTC
    _fill(audit, "a", "2", "200", "40000")  # the same fill again: counted once
    record = audit.records["a"]
    assert record.notional == D(3000)  # face, not size x price (which would be 13,000,000)
    assert record.coin == D("0.07")
    # 3000 / 0.07 to 1e-18, not the arithmetic mean of the prices by size (43,333.33)
    assert record.average == D("42857.142857142857142857")
    answer = audit.report("", "", 10)
    order = answer.orders[0]
    assert order.average_fill_price == "42857.142857142857142857"
    # Bought below the asked price: better for us, a negative slippage (-1428.57 bps).
    assert order.slippage_bps == "-1428.5714"
    assert answer.summaries[0].filled_notional == "3000"


def test_an_inverse_sell_slipping_below_the_intent_price_is_positive() -> None:
    audit = Audit(_face_of)
    _placed(audit, "s", INVERSE, Side.SELL, "10", "100000")
    _fill(audit, "s", "1", "10", "99000")
    record = audit.records["s"]
    assert record.average == D(99000)
    assert record.slippage_bps == D(100)  # 1% worse: got less on a sell


def test_a_linear_order_keeps_size_times_price() -> None:
    audit = Audit(_face_of)
    _placed(audit, "l", LINEAR, Side.BUY, "2", "100")
    _fill(audit, "l", "1", "1", "100")
    _fill(audit, "l", "2", "1", "110")
    record = audit.records["l"]
    assert (record.notional, record.average, record.face) == (D(210), D(105), None)


def test_an_inverse_record_survives_a_snapshot() -> None:
    audit = Audit(_face_of)
    _placed(audit, "a", INVERSE, Side.BUY, "300", "50000")
    _fill(audit, "a", "1", "100", "50000")
    _fill(audit, "a", "2", "200", "40000")
    snap = jr.JournalSnapshot()
    snap.audit.append(_record_to(audit.records["a"]))
    restored = audit_from_snapshot(jr.JournalSnapshot.FromString(snap.SerializeToString()), _face_of)
    again = restored.records["a"]
    kept = (again.face, again.coin, again.notional, again.average)
    assert kept == (D(10), D("0.07"), D(3000), audit.records["a"].average)


def test_a_linear_contract_of_a_hundredth_is_valued_at_size_x_value_x_price() -> None:
    audit = Audit(_face_of, _multiplier_of)
    _placed(audit, "o", OKX_LINEAR, Side.BUY, "300", "100")
    _fill(audit, "o", "1", "100", "99")
    _fill(audit, "o", "2", "200", "102")
    record = audit.records["o"]
    # 1 x 99 + 2 x 102 = 303 USDT, not 30,300: the contracts are 0.01 ETH each
    assert (record.notional, record.average) == (D(303), D(101))
    assert record.slippage_bps == D(100)  # paid 1% over the asked 100
    snap = jr.JournalSnapshot()
    snap.audit.append(_record_to(record))
    restored = audit_from_snapshot(jr.JournalSnapshot.FromString(snap.SerializeToString()))
    again = restored.records["o"]
    assert (again.multiplier, again.notional, again.average) == (D("0.01"), D(303), D(101))
