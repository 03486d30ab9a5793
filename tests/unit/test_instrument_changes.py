"""A venue's instrument changes (docs/bus.md, "Instruments"): the diff ingest publishes on
md.{<venue>}.instruments, and what each follower makes of a delisting: the detector's engine
withholds the market's signals and position requests, the inspector's core refuses new entries
there with a NOTICE (and its journal and snapshot keep it), the Screener drops the symbol."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from tests.detector_support import BASE_NS, engine, trade
from tests.inspector_support import T0, core, fill, intent, market
from tests.unit.test_detector_engine import catalog, scored
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.domain.model import Candle, Side
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.convert import risk_event_to_pb
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.notify import wanted
from trademesh.core.inspector.snapshot import from_snapshot, to_snapshot
from trademesh.core.platform.bus.codec import decode, encode_instruments
from trademesh.core.platform.bus.instruments import InstrumentRelay, diff_instruments, listing_of
from trademesh.core.platform.bus.names import (
    instruments_stream,
    parse_instruments_stream,
    parse_market_stream,
)
from trademesh.core.screener.feed import ScreenFeed
from trademesh.core.screener.screen_file import SCREENS_DIR
from trademesh.core.screener.screens import load_screens
from trademesh.core.screener.state import MarketState
from trademesh.risk.v1 import journal_pb2 as jr

Change = bus.InstrumentChange


def instrument(symbol: str, tick: str = "0.01", active: bool = True) -> common.Instrument:
    return common.Instrument(
        venue="sim", symbol=symbol, tick_size=tick, lot_size="0.001", min_size="0", min_notional="5",
        active=active,
    )  # fmt: skip


def by_symbol(*items: common.Instrument) -> dict[str, common.Instrument]:
    return {i.symbol: i for i in items}


# ---- the stream and the diff


def test_the_instrument_stream_is_a_market_stream_by_name_but_no_channel() -> None:
    stream = instruments_stream("sim")
    assert stream == "md.{sim}.instruments"
    assert parse_instruments_stream(stream) == "sim"
    assert parse_market_stream(stream) is None  # the market consumers' channels know it not
    assert parse_instruments_stream("md.{sim}.trades") is None


def test_the_diff_names_listings_delistings_and_changed_rules_by_symbol() -> None:
    before = by_symbol(instrument("BTC/USDT"), instrument("ETH/USDT"), instrument("SOL/USDT"))
    after = by_symbol(
        instrument("BTC/USDT", tick="0.1", active=False), instrument("SOL/USDT"), instrument("XRP/USDT")
    )
    changes = diff_instruments(before, after)
    assert [(c.symbol, c.kind, list(c.fields)) for c in changes] == [
        ("BTC/USDT", Change.KIND_CHANGED, ["tick_size", "active"]),
        ("ETH/USDT", Change.KIND_DELISTED, []),
        ("XRP/USDT", Change.KIND_LISTED, []),
    ]
    changed, delisted, listed = changes
    assert (changed.before.tick_size, changed.after.tick_size) == ("0.01", "0.1")
    assert delisted.before.symbol == "ETH/USDT" and not delisted.HasField("after")
    assert listed.after.symbol == "XRP/USDT" and not listed.HasField("before")
    assert diff_instruments(after, after) == []


async def test_the_relay_publishes_each_change_once_with_the_whole_state() -> None:
    published: list[tuple[str, bytes]] = []

    async def publish(stream: str, envelope: bytes) -> None:
        published.append((stream, envelope))

    listed = [instrument("BTC/USDT"), instrument("ETH/USDT")]

    async def list_all() -> list[common.Instrument]:
        return list(listed)

    relay = InstrumentRelay("sim", publish, "ingest/test", 60, clock=lambda: 7)
    first = await relay.poll_with(list_all)
    assert [(c.symbol, c.kind) for c in first] == [
        ("BTC/USDT", Change.KIND_LISTED),
        ("ETH/USDT", Change.KIND_LISTED),
    ]
    assert await relay.poll_with(list_all) == []  # nothing changed: nothing published
    listed[:] = [instrument("BTC/USDT")]
    [gone] = await relay.poll_with(list_all)
    assert (gone.symbol, gone.kind) == ("ETH/USDT", Change.KIND_DELISTED)
    listed[:] = []
    assert await relay.poll_with(list_all) == [], "an empty answer is no delisting of everything"
    assert len(published) == 2
    stream, raw = published[-1]
    state = decode({b"d": raw}).instruments
    assert stream == "md.{sim}.instruments"
    assert (state.venue, state.ts_ns, state.initial) == ("sim", 7, False)
    assert [i.symbol for i in state.instruments] == ["BTC/USDT"]
    assert list(state.delisted) == ["ETH/USDT"]
    assert decode({b"d": published[0][1]}).instruments.initial

    # A restarted writer goes on from the last entry: nothing announced again; a relisting
    # takes the symbol out of `delisted`.
    again = InstrumentRelay("sim", publish, "ingest/test", 60)
    again.note(state)
    listed[:] = [instrument("BTC/USDT")]
    assert await again.poll_with(list_all) == []
    listed[:] = [instrument("BTC/USDT"), instrument("ETH/USDT")]
    [back] = await again.poll_with(list_all)
    assert (back.symbol, back.kind) == ("ETH/USDT", Change.KIND_LISTED)
    assert list(decode({b"d": published[-1][1]}).instruments.delisted) == []
    # The bus lost its entries: the state goes out again at the next read, with no change.
    again.mark_bus_loss(0)
    assert await again.poll_with(list_all) == []
    restated = decode({b"d": published[-1][1]}).instruments
    assert len(published) == 4 and list(restated.changes) == [] and len(restated.instruments) == 2


# ---- the detector: nothing emitted for a delisted market


def test_the_engine_withholds_the_signals_of_a_delisted_market_and_emits_again_once_listed() -> None:
    eng: Engine = engine(catalog())
    scored(eng)  # venue "v", symbol "BTC-USDT"
    eng.on_listing("v", "BTC-USDT", delisted=True)
    eng.on_trade("v", trade(BASE_NS + 1, 101.0, 8.0, "1"))
    withheld = eng.evaluate_due(BASE_NS + 2)
    assert (withheld.signals, withheld.withheld) == ([], 1)
    eng.on_listing("v", "BTC-USDT", delisted=False)
    eng.on_trade("v", trade(BASE_NS + 3, 99.0, 8.0, "2"))
    eng.evaluate_due(BASE_NS + 4)  # below the threshold again
    eng.on_trade("v", trade(BASE_NS + 5, 101.0, 8.0, "3"))
    again = eng.evaluate_due(BASE_NS + 6)
    assert (len(again.signals), again.withheld) == (1, 0)


# ---- the inspector: no new entry, said with a NOTICE


def test_the_inspector_refuses_entries_in_a_delisted_market_says_it_and_takes_exits() -> None:
    c = core()
    entry = c.on_intent(intent(Side.BUY, "1"), market(), T0)
    c.on_fill("sim", fill(entry.orders[0], "1"), T0)
    out = c.on_listing("sim", "BTC/USDT", True, T0)
    [notice] = out.events
    assert (notice.action, notice.policy, notice.venue, notice.symbol) == (
        RiskAction.NOTICE, "instrument.delisted", "sim", "BTC/USDT",
    )  # fmt: skip
    assert notice.reason == (
        "BTC/USDT delisted at sim: new entries there are refused; a position of 1 is held there: "
        "close it at the venue"
    )
    assert c.on_listing("sim", "BTC/USDT", True, T0).events == (), "said once"
    refused = c.on_intent(intent(Side.BUY), market(), T0)
    assert refused.action is RiskAction.BLOCK
    assert [(r.policy, r.reason) for r in refused.reasons] == [
        ("instrument.delisted", "BTC/USDT is delisted at sim: no new entries (the venue no longer lists it)")
    ]
    assert c.on_intent(intent(Side.BUY, venue="other"), market(), T0).allowed  # another venue's market
    assert c.on_intent(intent(Side.SELL, "1", reduce_only=True), market(), T0).allowed  # an exit
    [listed] = c.on_listing("sim", "BTC/USDT", False, T0).events
    assert listed.reason == "BTC/USDT listed again at sim: entries are taken again"
    assert c.on_intent(intent(Side.BUY), market(), T0).allowed


def test_the_journal_replays_a_delisting_and_the_snapshot_keeps_it() -> None:
    start = jr.JournalEntry(
        now_ns=T0, start=jr.JournalStart(policies="", starting_equity="100000", instance="i")
    )
    c = new_core(start)
    listing = jr.JournalListing(venue="sim", symbol="ETH/USDT", delisted=True)
    apply_entry(c, jr.JournalEntry(now_ns=T0, listing=listing))
    assert c.book.delisted == {("sim", "ETH/USDT"): "the venue no longer lists it"}
    snapshot = to_snapshot(c, Audit(), start, "", (1, 0))
    restored = from_snapshot(jr.JournalSnapshot.FromString(snapshot.SerializeToString()))
    assert restored.book.delisted == c.book.delisted
    apply_entry(
        restored, jr.JournalEntry(now_ns=T0, listing=jr.JournalListing(venue="sim", symbol="ETH/USDT"))
    )
    assert restored.book.delisted == {}


# ---- the Screener: the symbol dropped


def test_the_screener_drops_a_delisted_symbol_and_forgets_what_it_held() -> None:
    screens = load_screens(SCREENS_DIR)
    screen = next(s for s in screens.values() if s.venue)
    state = MarketState([screen])
    timeframe = screen.bars.timeframe
    for symbol in ("BTC/USDT", "ETH/USDT"):
        one = Decimal(1)
        candle = Candle(timeframe, 0, one, one, one, one, one, one, 1, True)
        assert state.add_bar(screen.venue, symbol, candle)
    assert [i.symbol for i in state.inputs(screen)] == ["BTC/USDT", "ETH/USDT"]
    state.set_delisted(screen.venue, frozenset({"ETH/USDT"}))
    assert [i.symbol for i in state.inputs(screen)] == ["BTC/USDT"]
    assert "ETH/USDT" not in state.bars[(screen.venue, timeframe)]
    state.set_delisted(screen.venue, frozenset())
    assert [i.symbol for i in state.inputs(screen)] == ["BTC/USDT"]  # listed again: ranked once it has bars


def test_a_listing_read_from_an_entry() -> None:
    entry = bus.InstrumentChanges(
        venue="sim", ts_ns=5, instruments=[instrument("BTC/USDT")], delisted=["ETH/USDT"]
    )
    entry.changes.add(kind=Change.KIND_DELISTED, symbol="ETH/USDT", before=instrument("ETH/USDT"))
    listing = listing_of(entry)
    assert (listing.venue, listing.delisted, listing.newly_delisted(), listing.newly_listed()) == (
        "sim", frozenset({"ETH/USDT"}), ["ETH/USDT"], [],
    )  # fmt: skip
    assert set(listing.instruments) == {"BTC/USDT"}


async def test_the_detectors_shell_hands_the_venues_delistings_to_the_engine() -> None:
    eng = engine(catalog())

    async def emit(evaluation: object) -> None:
        del evaluation

    runner = PatchRunner(eng, emit)
    assert runner.listing("v", frozenset({"BTC-USDT", "ETH-USDT"})) == [
        ("BTC-USDT", True),
        ("ETH-USDT", True),
    ]
    assert runner.listing("w", frozenset({"BTC-USDT"})) == [("BTC-USDT", True)]
    assert runner.listing("v", frozenset({"ETH-USDT"})) == [("BTC-USDT", False)]
    assert eng.delisted == {("v", "ETH-USDT"), ("w", "BTC-USDT")}


def test_the_screeners_feed_takes_a_venues_delistings_from_its_instrument_stream() -> None:
    screens = load_screens(SCREENS_DIR)
    screen = next(s for s in screens.values() if s.venue)
    state = MarketState([screen])
    feed = ScreenFeed(cast(Any, None), state, ticker_age_ms=60_000)
    stream = instruments_stream(screen.venue)
    assert stream in feed.streams
    entry = bus.InstrumentChanges(
        venue=screen.venue, instruments=[instrument("BTC/USDT")], delisted=["ETH/USDT"]
    )
    fields = {b"d": encode_instruments("ingest/test", entry)}
    assert feed._take(stream, [(b"1-0", fields)]) == 1
    assert state.delisted[screen.venue] == frozenset({"ETH/USDT"})


def test_the_operator_is_notified_of_a_delisting_not_of_each_entry_it_blocks() -> None:
    c = core()
    [notice] = c.on_listing("sim", "BTC/USDT", True, T0).events
    [block] = c.on_intent(intent(Side.BUY), market(), T0).reasons
    assert wanted(risk_event_to_pb(notice)) and not wanted(risk_event_to_pb(block))
