"""Advisor stages 1 and 2: the context snapshot and the market-quality gate."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tests.advisor_support import INSTRUMENT, MS, NOW_NS, book, context, signal
from trademesh.core.advisor.engine.config import QualityConfig
from trademesh.core.advisor.engine.context import BookTop, GapMarker
from trademesh.core.advisor.engine.quality import assess_quality
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.domain.contracts.signal import Direction, Signal
from trademesh.core.domain.model import Instrument, InstrumentKind, Position
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
CFG = QualityConfig()


def test_snapshot_derives_mid_spread_age_position_and_equity() -> None:
    ctx = context(positions=(Position("BTC/USDT", D("0.5"), D("100")), Position("ETH/USDT", D("3"), D("1"))))
    snap = snapshot(signal(), ctx, NOW_NS)
    assert snap.accepted
    assert snap.reference_price == D("102.00")
    assert snap.spread_ratio == D("0.02") / D("102.00")
    assert snap.last_event_age_ns == 100 * MS
    assert snap.position == D("0.5")
    assert snap.equity == D("100000")  # the quote balance when the shell gives no equity


def test_snapshot_takes_the_shells_equity_when_given() -> None:
    assert snapshot(signal(), context(equity=D("1234.5")), NOW_NS).equity == D("1234.5")


def test_snapshot_of_another_markets_context_is_refused_with_the_reason() -> None:
    snap = snapshot(signal(), context(symbol="ETH/USDT"), NOW_NS)
    assert not snap.accepted
    assert "context is for sim ETH/USDT, the signal for sim BTC/USDT" in snap.problems


def test_snapshot_without_any_price_is_refused() -> None:
    snap = snapshot(signal(), context(price=None, book=None), NOW_NS)
    assert snap.problems == ("no price: neither a last trade nor an uncrossed book",)


def test_a_crossed_book_gives_the_last_trade_as_reference() -> None:
    snap = snapshot(signal(), context(book=book("102.50", "102.40")), NOW_NS)
    assert snap.reference_price == D("102.00")


def test_a_directional_signal_needs_the_instrument_but_a_flat_one_does_not() -> None:
    assert not snapshot(signal(), context(instrument=None), NOW_NS).accepted
    assert snapshot(signal(Direction.FLAT), context(instrument=None), NOW_NS).accepted


def test_signal_fields_are_checked() -> None:
    with pytest.raises(InvalidArgument) as err:
        dataclasses.replace(signal(), conviction=D("1.5"), signal_id="")
    fields = {v.field for v in err.value.violations}
    assert fields == {"conviction", "signal_id"}


def test_a_clean_market_scores_one_and_passes() -> None:
    gate = assess_quality(snapshot(signal(), context(), NOW_NS), CFG)
    assert gate.score == 1.0
    assert gate.passed
    assert gate.reasons == ()


def test_staleness_costs_in_proportion_between_fresh_and_stale() -> None:
    # 6 s old: halfway between fresh (2 s) and stale (10 s): half the staleness penalty.
    snap = snapshot(signal(), context(last_event_ns=NOW_NS - 6_000 * MS), NOW_NS)
    gate = assess_quality(snap, CFG)
    assert gate.score == pytest.approx(1 - 0.3)
    assert gate.reasons == ("stale: last event 6000 ms ago (fresh up to 2000 ms)",)
    assert gate.passed  # 0.7 >= 0.6


def test_a_stale_market_with_an_open_gap_is_blocked_with_both_reasons() -> None:
    ctx = context(last_event_ns=NOW_NS - 20_000 * MS, gaps=(GapMarker(1, 2, 3, repaired=False),))
    gate = assess_quality(snapshot(signal(), ctx, NOW_NS), CFG)
    assert gate.score == 0.0  # 1 - 0.6 - 0.5, floored at 0
    assert not gate.passed
    assert [p.check for p in gate.penalties] == ["staleness", "open_gaps"]
    assert "1 open gap(s), 3 bar(s) missing" in gate.reasons


def test_repaired_bars_cost_a_little_each_up_to_the_cap() -> None:
    few = context(gaps=(GapMarker(1, 2, 2, repaired=True),))
    many = context(gaps=(GapMarker(1, 2, 40, repaired=True),))
    assert assess_quality(snapshot(signal(), few, NOW_NS), CFG).score == pytest.approx(0.9)
    assert assess_quality(snapshot(signal(), many, NOW_NS), CFG).score == pytest.approx(0.75)


def test_a_crossed_book_blocks() -> None:
    gate = assess_quality(snapshot(signal(), context(book=book("102.02", "102.01")), NOW_NS), CFG)
    assert gate.score == 0.0
    assert not gate.passed
    assert gate.reasons == ("crossed book: bid 102.02 >= ask 102.01",)


def test_a_thin_and_wide_book_costs_both_penalties() -> None:
    # Best levels worth ~102 and ~103 (< 1000), spread 1 / 102.5 = 0.98% (> 0.4%).
    gate = assess_quality(snapshot(signal(), context(book=book("102.00", "103.00", size="1")), NOW_NS), CFG)
    assert [p.check for p in gate.penalties] == ["thin", "wide"]
    assert gate.score == pytest.approx(0.4)
    assert not gate.passed


# Deribit's BTC-PERPETUAL: a unit of size is a contract of 1 USD (its book's sizes are USD).
PERPETUAL = Instrument(
    venue="deribit", symbol="BTC/USD:BTC", native_symbol="BTC-PERPETUAL", kind=InstrumentKind.PERPETUAL,
    base_asset="BTC", quote_asset="USD", settle_asset="BTC", tick_size=D("0.5"), lot_size=D(10),
    contract_size=D(0), contract_value=D(1), contract_value_asset="USD",
)  # fmt: skip


def test_a_book_level_is_worth_its_size_in_the_instruments_units() -> None:
    deribit = dataclasses.replace(signal(), venue="deribit", symbol="BTC/USD:BTC")

    def gate(instrument: Instrument, top: BookTop, sig: Signal = deribit) -> list[str]:
        ctx = context(venue=sig.venue, symbol=sig.symbol, instrument=instrument, book=top)
        return list(assess_quality(snapshot(sig, ctx, NOW_NS), CFG).reasons)

    # 360 contracts of 1 USD at the bid are 360 USD whatever the price (not 91249.5 x 360):
    # the replayed Deribit session's last book (tests/integration/test_inverse_advisor_chain.py)
    top = BookTop(D("91249.5"), D(360), D(91250), D(490), NOW_NS - 100 * MS)
    assert gate(PERPETUAL, top) == ["thin book: best level worth 360 < 1000"]
    # OKX's BTC-USD-SWAP: 100 USD a contract, 12 of them are 1,200 USD
    swap = dataclasses.replace(PERPETUAL, contract_value=D(100))
    assert gate(swap, dataclasses.replace(top, bid_size=D(12), ask_size=D(12))) == []
    # a linear contract of 0.01 BTC (OKX's BTC-USDT-SWAP): 1 contract at 65,000 is 650 USDT
    linear = dataclasses.replace(
        INSTRUMENT, symbol="BTC/USDT:USDT", kind=InstrumentKind.PERPETUAL, contract_size=D("0.01"),
        contract_value=D("0.01"),
    )  # fmt: skip
    okx = dataclasses.replace(signal(), symbol="BTC/USDT:USDT")
    level = BookTop(D(65000), D(1), D("65000.1"), D(1), NOW_NS - 100 * MS)
    assert gate(linear, level, okx) == ["thin book: best level worth 650 < 1000"]


def test_reconnects_and_resyncs_cost_up_to_the_venue_cap() -> None:
    one = assess_quality(snapshot(signal(), context(reconnects=1), NOW_NS), CFG)
    many = assess_quality(snapshot(signal(), context(reconnects=5, resyncs=5), NOW_NS), CFG)
    assert one.score == pytest.approx(0.9)
    assert many.score == pytest.approx(0.7)
    assert many.reasons == ("venue unsteady: 5 reconnect(s), 5 resync(s)",)


def test_no_book_costs_half() -> None:
    gate = assess_quality(snapshot(signal(), context(book=None), NOW_NS), CFG)
    assert gate.score == 0.5
    assert not gate.passed


def test_the_threshold_is_configurable() -> None:
    lenient = dataclasses.replace(CFG, threshold=0.4)
    assert assess_quality(snapshot(signal(), context(book=None), NOW_NS), lenient).passed


def test_config_out_of_range_names_the_field() -> None:
    with pytest.raises(InvalidArgument, match=r"quality\.threshold"):
        QualityConfig(threshold=1.5)
