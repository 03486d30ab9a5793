"""The conformance kit's report (the text table, the JSON, the verdict), which checks run, and the
sizes and prices of its orders."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import trademesh.core.venue_check.checks  # noqa: F401  (registers the checks)
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.registry import CHECKS, select
from trademesh.core.venue_check.report import as_json, as_text
from trademesh.core.venue_check.results import BadTarget, CheckOutcome, CheckResult, one_line
from trademesh.core.venue_check.runner import Report
from trademesh.core.venue_check.sizing import Terms

D = Decimal


def _report(*outcomes: CheckOutcome) -> Report:
    results = [CheckResult(f"check.{i}", outcome, f"reason {i}", 0.25) for i, outcome in enumerate(outcomes)]
    return Report("127.0.0.1:5070", "sim", "BTC/USDT", results, duration_s=3.0)


def test_a_failed_check_makes_the_venue_not_conform_and_the_text_says_which() -> None:
    text = as_text(_report(CheckOutcome.PASS, CheckOutcome.FAIL, CheckOutcome.SKIP))
    assert text.splitlines() == [
        "PASS  check.0  reason 0",
        "FAIL  check.1  reason 1",
        "SKIP  check.2  reason 2",
        "venue sim at 127.0.0.1:5070 does not conform to the venue contract "
        "(1 passed, 1 failed, 1 skipped; 3.0 s)",
    ]


def test_skips_keep_a_venue_conforming() -> None:
    report = _report(CheckOutcome.PASS, CheckOutcome.SKIP)
    assert report.conforms
    assert (
        as_text(report)
        .splitlines()[-1]
        .startswith("venue sim at 127.0.0.1:5070 conforms to the venue contract")
    )


def test_the_json_report_holds_every_check_and_the_verdict() -> None:
    report = _report(CheckOutcome.PASS, CheckOutcome.FAIL)
    report.notes.append("orders the kit could not cancel: 7")
    document = json.loads(as_json(report))
    assert document["conforms"] is False
    assert (document["passed"], document["failed"], document["skipped"]) == (1, 1, 0)
    assert document["checks"][1] == {
        "name": "check.1",
        "outcome": "fail",
        "reason": "reason 1",
        "duration_s": 0.25,
    }
    assert document["notes"] == ["orders the kit could not cancel: 7"]
    assert (document["venue"], document["symbol"], document["address"]) == (
        "sim",
        "BTC/USDT",
        "127.0.0.1:5070",
    )


def test_a_reason_is_one_line_of_bounded_length() -> None:
    assert one_line("a\nb\t c") == "a b c"
    cut = one_line("x" * 1000)
    assert len(cut) == 300 and cut.endswith("...")


def test_checks_run_in_the_kit_order_whatever_order_they_are_named_in() -> None:
    names = [c.name for c in select(["drain", "health", "subscribe.book"])]
    assert names == ["health", "subscribe.book", "drain"]
    assert list(CHECKS)[-1] == "drain", "Drain runs last: a drained venue takes nothing more"
    assert [c.name for c in select(skip=["drain"])] == list(CHECKS)[:-1]


def test_an_unknown_check_name_or_nothing_left_is_bad_usage() -> None:
    with pytest.raises(BadTarget, match="--skip: no check named 'nosuch'"):
        select(skip=["nosuch"])
    with pytest.raises(BadTarget, match="no check left to run"):
        select(["health"], ["health"])


def _instrument(**fields: str | int) -> common.Instrument:
    base = {"symbol": "BTC/USDT", "base_asset": "BTC", "quote_asset": "USDT", "tick_size": "0.1",
            "lot_size": "0.001", "min_size": "0", "min_notional": "0", "contract_value": "1",
            "contract_value_asset": "BTC", "kind": common.INSTRUMENT_KIND_SPOT}  # fmt: skip
    return common.Instrument(**{**base, **fields})  # type: ignore[arg-type]


def test_the_smallest_order_keeps_the_lot_the_minimum_size_and_the_minimum_notional() -> None:
    assert Terms(_instrument()).smallest(D("65000")) == D("0.001")
    assert Terms(_instrument(min_size="0.0025")).smallest(D("65000")) == D("0.003")
    # 10 USDT at 65000: 0.000153.. BTC, up to the lot.
    assert Terms(_instrument(min_notional="10", lot_size="0.0001")).smallest(D("65000")) == D("0.0002")
    # An inverse contract of 10 USD a unit, a minimum of 100 USD: 10 units, whatever the price.
    inverse = _instrument(symbol="BTC/USD:BTC", quote_asset="USD", lot_size="1", min_notional="100",
                          contract_value="10", contract_value_asset="USD",
                          kind=common.INSTRUMENT_KIND_PERPETUAL)  # fmt: skip
    assert Terms(inverse).smallest(D("30000")) == Terms(inverse).smallest(D("90000")) == D("10")


def test_a_resting_buy_is_half_the_market_on_the_tick_and_a_crossing_pair_straddles_it() -> None:
    terms = Terms(_instrument())
    assert terms.resting_buy(D("65000.37")) == D("32500.1")
    assert terms.resting_buy(D("0.1")) == D("0.1"), "never below one tick"
    assert terms.crossing(D("100"), D("101")) == (D("106.1"), D("95"))


def test_a_round_trip_sells_no_more_than_a_spot_buy_delivers_and_the_same_on_a_contract() -> None:
    spot = Terms(_instrument(taker_fee_rate="0.001", lot_size="1", min_size="73"))
    buy, sell = spot.round_trip(D("0.0001"))
    assert (buy, sell) == (D("74"), D("73"))
    assert buy * (1 - D("0.001")) >= sell, "what the buy delivers after a fee in the base covers the sell"
    contract = Terms(_instrument(kind=common.INSTRUMENT_KIND_PERPETUAL, symbol="BTC/USDT:USDT"))
    assert contract.round_trip(D("65000")) == (D("0.001"), D("0.001"))
