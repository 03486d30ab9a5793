"""A venue's fee rates in its instrument facts: the sim states its config's, a live venue what
ccxt describes, the wire and the tools carry them, and the advisor reads them back."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import ccxt

from trademesh.core.advisor.gather import _instrument
from trademesh.core.domain.convert import instrument_to_pb
from trademesh.core.tools.render import instrument as rendered
from trademesh.venues.live.markets import instrument_of
from trademesh.venues.okx_swap.spec import SPEC as OKX_SWAP
from trademesh.venues.sim.config import SimConfig
from trademesh.venues.sim.symbols import instruments

D = Decimal


def test_the_sims_instruments_state_its_configured_fees_and_the_advisor_reads_them() -> None:
    config = SimConfig(maker_fee_rate=D("-0.0001"), taker_fee_rate=D("0.0005"))
    btc = instruments(config)[0]
    wire = instrument_to_pb(btc)
    assert (wire.maker_fee_rate, wire.taker_fee_rate) == ("-0.0001", "0.0005")
    read = _instrument("sim", rendered(wire))
    assert (read.maker_fee_rate, read.taker_fee_rate) == (D("-0.0001"), D("0.0005"))
    assert dataclasses.replace(read, contract_value_asset="") == btc  # the rest as sent


def test_a_venue_that_states_no_fees_sends_none_and_is_read_as_stating_none() -> None:
    silent = dataclasses.replace(instruments(SimConfig())[0], maker_fee_rate=None, taker_fee_rate=None)
    wire = instrument_to_pb(silent)
    assert (wire.maker_fee_rate, wire.taker_fee_rate) == ("", "")
    read = _instrument("sim", rendered(wire))
    assert (read.maker_fee_rate, read.taker_fee_rate) == (None, None)


def test_a_live_venue_states_the_fees_ccxt_describes_for_its_market() -> None:
    market = ccxt.okx().parse_market(
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "uly": "BTC-USDT", "instFamily": "BTC-USDT",
         "settleCcy": "USDT", "ctValCcy": "BTC", "ctVal": "0.01", "ctType": "linear", "tickSz": "0.1",
         "lotSz": "0.01", "minSz": "0.01", "state": "live"}
    )  # fmt: skip
    okx = instrument_of(OKX_SWAP, market)
    assert (okx.maker_fee_rate, okx.taker_fee_rate) == (D("0.0002"), D("0.0005"))
    assert instrument_of(OKX_SWAP, {**market, "maker": None, "taker": None}).taker_fee_rate is None
