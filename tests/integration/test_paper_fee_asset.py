"""A paper venue charges a spot fill's fee in the asset its exchange does (issue 57 item 1;
docs/ledger.md, "Fees"): `trademesh venue NAME --paper --replay <capture>`, a market buy through
its TradeFlow, and the balances and the fills' fee asset read back. Paper Binance (NKN/USDT, its
recorded session): the fee comes off the NKN bought, the USDT paid is the fills' price x size.
Paper Kraken (BTC/CHF, its recorded session; 100,000 CHF in the paper account): the fee is paid
in CHF, the BTC bought is whole."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.paper_support import Market, venue_totals
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, Executions, stop_venue, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration]

D = Decimal
WAIT_S = 60.0


@dataclass(frozen=True)
class Case:
    venue: str
    capture: str
    symbol: str
    size: str
    base: str
    quote: str
    fee_in_base: bool


CASES = [
    Case("binance", "BINANCE", "NKN/USDT", "1000", "NKN", "USDT", fee_in_base=True),
    Case("kraken", "KRAKEN", "BTC/CHF", "0.001", "BTC", "CHF", fee_in_base=False),
]


@pytest.mark.parametrize("case", CASES, ids=[case.venue for case in CASES])
async def test_a_paper_spot_buy_pays_its_fee_in_the_asset_its_exchange_charges(
    tmp_path: Path, case: Case
) -> None:
    paper = tmp_path / "paper.toml"
    paper.write_text('[balances]\nUSDT = "100000"\nCHF = "100000"\nBTC = "1"\n')
    extra = ["--paper", "--paper-config", str(paper)]
    venue, log = start_replay_venue(tmp_path, case.venue, capture_files(case.capture), extra=extra)
    try:
        stubs = venue.stubs()
        market = Market(stubs, case.symbol)  # its subscription starts the replay
        try:
            await until(market.quoted, WAIT_S, what="the venue's book")
            listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
            taker = D(next(i for i in listed.instruments if i.symbol == case.symbol).taker_fee_rate)
            before = await venue_totals(stubs)
            executions = Executions(stubs, [case.symbol])
            try:
                order = tf.PlaceOrderRequest(
                    symbol=case.symbol, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=case.size
                )
                placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
                assert placed.order.status == tf.ORDER_STATUS_FILLED, placed.order
                seen = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED, WAIT_S)
            finally:
                await executions.close()
        finally:
            await market.close()
        fills = [e.fill for e in seen if e.HasField("fill")]
        size = sum((D(f.size) for f in fills), D(0))
        paid = sum((D(f.price) * D(f.size) for f in fills), D(0))
        fees = sum((D(f.fee) for f in fills), D(0))
        assert size == D(case.size) and fees > 0
        after = await venue_totals(stubs)
        moved = {asset: after.get(asset, D(0)) - before.get(asset, D(0)) for asset in (case.base, case.quote)}
        if case.fee_in_base:
            assert {f.fee_asset for f in fills} == {case.base} and fees == size * taker
            assert moved == {case.base: size - size * taker, case.quote: -paid}
        else:
            assert {f.fee_asset for f in fills} == {case.quote} and fees == paid * taker
            assert moved == {case.base: size, case.quote: -paid - fees}
    finally:
        await stop_venue(venue, log)
