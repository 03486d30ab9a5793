"""A spot fee paid in the base asset is off the position (issue 57 item 1, docs/inspector.md,
"Dust"): Binance, OKX and Bybit take a buy's fee from the NKN it brings in, so a buy of 1123 NKN
at 0.1 % holds 1121.877. The inspector counted 1123, and every exit of 1123 was refused by the
venue (insufficient balance). Now the position is what is held, exits, flattening and the
protective pair are sized to it in whole lots (1121.8 at a lot of 0.1), and the 0.077 left is
dust: said once, never an order, no strategy's to close. A derivative's fee (its margin asset)
and a fill whose fee asset is not said (an old journal) leave the position as before; a journal
replayed and a snapshot restored give the same state."""

from __future__ import annotations

from dataclasses import replace

from tests.inspector_support import MS, SECOND, T0, D, cancelled, core, fill, intent, market, placed, update
from tests.unit.test_inspector_snapshot import dump
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as cm
from trademesh.core.domain.convert import fill_to_pb
from trademesh.core.domain.model import Fill, InstrumentKind, OrderStatus, Side
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.convert import intent_from_pb
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskVerdict
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.requests import plan_request
from trademesh.core.inspector.snapshot import audit_from_snapshot, from_snapshot, to_snapshot
from trademesh.core.inspector.views import positions_view
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

VENUE, SYMBOL = "binance", "NKN/USDT"
KEY = (VENUE, SYMBOL)
NKN_SPOT = InstrumentFacts(tick_size=D("0.0001"), lot_size=D("0.1"), kind=InstrumentKind.SPOT)
PRICE = "0.3527"


def nkn() -> InspectorCore:
    c = core()
    c.on_instruments(VENUE, {SYMBOL: NKN_SPOT}, T0)
    return c


def charged(order: PlaceOrder, fee: str, asset: str, size: str | None = None) -> Fill:
    """A fill of `order` at PRICE whose fee is `fee` of `asset`."""
    return replace(fill(order, size, price=PRICE), fee=D(fee), fee_asset=asset)


def bought(c: InspectorCore, asset: str = "NKN") -> tuple[PlaceOrder, list[PlaceOrder]]:
    """A market buy of 1123 NKN whose 0.1 % fee (1.123) is paid in `asset`, its pair acknowledged."""
    entry = c.on_intent(
        intent(size="1123", price=None, venue=VENUE, symbol=SYMBOL, stop="0.34", target="0.37"),
        market(PRICE, "0.0001"),
        T0,
    ).orders[0]
    out = c.on_fill(VENUE, charged(entry, "1.123", asset), T0 + MS)
    pair = placed(out.actions)
    for order in pair:
        c.on_order_update(update(order, OrderStatus.OPEN), T0 + 2 * MS)
    return entry, pair


def close_request(request_id: str = "close-1") -> sig.PositionRequest:
    return sig.PositionRequest(
        request_id=request_id, venue=VENUE, symbol=SYMBOL, action=sig.POSITION_ACTION_CLOSE,
        strategy_id="trend", ts_request_ns=T0 + SECOND, ts_event_ns=T0 + SECOND,
    )  # fmt: skip


def test_a_buy_paying_its_fee_in_the_base_holds_its_size_less_the_fee() -> None:
    c = nkn()
    _, pair = bought(c)
    assert c.book.positions.size(KEY) == D("1121.877")
    assert c.book.positions.by_strategy[("trend", *KEY)] == D("1121.877")
    assert c.book.positions.positions[KEY].avg_price == D(PRICE)
    # The fee is money too: 1.123 NKN at the fill's price, in the quote asset.
    assert c.fees == D("1.123") * D(PRICE)
    # The protective pair covers what the venue holds in whole lots: 1121.8 each.
    assert sorted((o.role.value, o.size) for o in pair) == [
        ("stop_loss", D("1121.8")),
        ("take_profit", D("1121.8")),
    ]


def test_a_close_sells_the_whole_lots_held_and_leaves_dust_said_once() -> None:
    c = nkn()
    _, pair = bought(c)
    planned = plan_request(c, close_request(), T0 + SECOND)
    assert planned.refusal is None
    (verdict,) = [
        c.on_intent(intent_from_pb(i), market(PRICE, "0.0001"), T0 + SECOND) for i in planned.intents
    ]
    (exit_,) = verdict.orders
    assert (exit_.side, exit_.size, exit_.reduce_only) == (Side.SELL, D("1121.8"), True)
    assert set(cancelled(verdict.output.actions)) == {o.client_order_id for o in pair}
    # Its fee in the USDT it brings in: the position keeps what the sell did not take.
    sold = c.on_fill(VENUE, charged(exit_, "0.39566", "USDT"), T0 + SECOND + MS)
    assert c.book.positions.size(KEY) == D("0.077")
    (notice,) = [e for e in sold.events if e.policy == "position.dust"]
    assert notice.action is RiskAction.NOTICE and dict(notice.values) == {"size": "0.077", "lot_size": "0.1"}
    assert placed(sold.actions) == []  # no protective order for dust
    # The trade is over: its loss (the fees) counts for the loss streak.
    assert c.streak.count == 1
    # Nothing more is said or placed for it, and no strategy is told it holds it.
    later = c.on_mark(VENUE, SYMBOL, D("0.3530"), T0 + 2 * SECOND)
    assert later.actions == () and later.events == ()
    (view,) = positions_view(c, VENUE, {}, set())
    assert view.size == "0.077" and list(view.strategies) == []
    again = plan_request(c, close_request("close-2"), T0 + 3 * SECOND)
    assert again.intents == [] and again.refusal is not None and again.refusal.policy == "request.dust"


def test_close_all_flattens_the_whole_lots_held() -> None:
    c = nkn()
    bought(c)
    flatten = [o for o in placed(c.close_all("test", T0 + SECOND).actions) if o.role is OrderRole.FLATTEN]
    assert [(o.side, o.size) for o in flatten] == [(Side.SELL, D("1121.8"))]


def test_a_sell_paying_its_fee_in_the_base_gives_up_the_fee_too() -> None:
    c = nkn()
    bought(c, asset="USDT")
    assert c.book.positions.size(KEY) == D("1123")
    exit_ = c.on_intent(
        intent(Side.SELL, size="500", price=None, venue=VENUE, symbol=SYMBOL, reduce_only=True),
        market(PRICE, "0.0001"),
        T0 + SECOND,
    ).orders[0]
    c.on_fill(VENUE, charged(exit_, "0.5", "NKN"), T0 + SECOND + MS)
    assert c.book.positions.size(KEY) == D("622.5")


def test_an_old_journals_fill_without_a_fee_asset_holds_its_whole_size() -> None:
    c = nkn()
    bought(c, asset="")
    assert c.book.positions.size(KEY) == D("1123")


def test_a_derivatives_fee_in_its_coin_leaves_the_position_whole() -> None:
    """An inverse contract's fee is in its coin (BTC of BTC/USD:BTC): not a part of its size."""
    c = core()
    inverse = InstrumentFacts(contract_value=D(100), inverse=True, kind=InstrumentKind.PERPETUAL)
    c.on_instruments("sim", {"BTC/USD:BTC": inverse}, T0)
    entry = c.on_intent(intent(size="10", price=None, symbol="BTC/USD:BTC"), market(), T0).orders[0]
    c.on_fill("sim", replace(fill(entry), fee=D("0.0001"), fee_asset="BTC"), T0 + MS)
    assert c.book.positions.size(("sim", "BTC/USD:BTC")) == D(10)


def _intent_entry(number: int, side: int, size: str, reduce_only: bool, at_ns: int) -> jr.JournalEntry:
    asked = am.Intent(
        intent_id=f"i{number}", venue=VENUE, symbol=SYMBOL, side=side, size=size,  # type: ignore[arg-type]
        entry_type=tf.ORDER_TYPE_MARKET, time_in_force=tf.TIME_IN_FORCE_IOC,
        expires_at_ns=at_ns + 30 * SECOND, strategy_id="trend", ts_intent_ns=at_ns, reduce_only=reduce_only,
    )  # fmt: skip
    return jr.JournalEntry(now_ns=at_ns, intent=jr.JournalIntent(intent=asked, bid="0.3526", ask="0.3527"))


def _journal() -> list[jr.JournalEntry]:
    """A buy paying its fee in NKN, a close of the whole lots and its fill paying in USDT: as the
    shell journals them."""
    start = jr.JournalStart(policies="", starting_equity="100000", instance="toy")
    listed = cm.Instrument(
        venue=VENUE, symbol=SYMBOL, kind=cm.INSTRUMENT_KIND_SPOT, base_asset="NKN", quote_asset="USDT",
        tick_size="0.0001", lot_size="0.1",
    )  # fmt: skip
    entries = [
        jr.JournalEntry(now_ns=T0, start=start),
        jr.JournalEntry(now_ns=T0, instruments=jr.JournalInstruments(venue=VENUE, instruments=[listed])),
    ]
    c = new_core(entries[0])
    apply_entry(c, entries[1])
    legs = ((cm.SIDE_BUY, "1123", False, "1.123", "NKN"), (cm.SIDE_SELL, "1121.8", True, "0.39566", "USDT"))
    for number, (side, size, reduce_only, fee, asset) in enumerate(legs):
        at = T0 + (number + 1) * SECOND
        asked = _intent_entry(number, side, size, reduce_only, at)
        verdict = apply_entry(c, asked)
        assert isinstance(verdict, RiskVerdict) and verdict.allowed, verdict
        heard = jr.JournalFill(venue=VENUE, fill=fill_to_pb(charged(verdict.orders[0], fee, asset)))
        entries += [asked, jr.JournalEntry(now_ns=at + MS, fill=heard)]
        apply_entry(c, entries[-1])
    return entries


def test_a_journal_replayed_and_a_snapshot_restored_hold_the_same_position() -> None:
    entries = _journal()
    replayed, audit = new_core(entries[0]), Audit()
    held = []
    for entry in entries[1:]:
        audit.observe(entry, apply_entry(replayed, entry))
        if entry.WhichOneof("input") == "fill":
            held.append(replayed.book.positions.size(KEY))
    assert held == [D("1121.877"), D("0.077")]
    snap = to_snapshot(replayed, audit, entries[0], "", (1, 0))
    read = jr.JournalSnapshot.FromString(snap.SerializeToString())
    restored = from_snapshot(read)
    assert dump((restored, audit_from_snapshot(read))) == dump((replayed, audit))
    # Replayed again from its start: the same state.
    again = new_core(entries[0])
    for entry in entries[1:]:
        apply_entry(again, entry)
    assert dump(again) == dump(replayed)
