"""Inverse contracts as the venues list them, from the captures through the real ccxt client.

(Issue 12, item 19.) Deribit's BTC-PERPETUAL (the shared capture's row: contract_size 10,
min_trade_amount 10) is sized in USD: lots of 10, each unit of size worth 1 USD, and
contract_size "0" (its base amount moves with the price). OKX's inverse swaps are sized in
contracts of a USD face value: the project's OKX_SWAP capture, with UNI-USD-SWAP added to
its instruments answer as OKX's docs list it (ctType inverse, ctVal 10, ctValCcy USD),
lists UNI/USD:UNI with contract_value "10" USD. Linear contracts and options keep their
value in the base asset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, Venue, stop_venue
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

PERPETUAL, PUT = "BTC/USD:BTC", "BTC/USD:BTC-210924-8000-P"


async def listed(venue: Venue) -> dict[str, common.Instrument]:
    answer = await venue.stubs().md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    return {i.symbol: i for i in answer.instruments}


def terms(item: common.Instrument) -> tuple[str, ...]:
    return (item.contract_size, item.contract_value, item.contract_value_asset, item.lot_size, item.min_size)


def capture_row(files: list[Path], marker: str, key: str, value: str) -> dict[str, object]:
    for path in files:
        for line in path.read_text().splitlines():
            if line.partition(" -> ")[0].find(marker) >= 0:
                body = json.loads(line.split(" -> ", 1)[1].split(": ", 1)[1])
                rows = body["result"] if "result" in body else body["data"]
                found = [row for row in rows if row.get(key) == value]
                if found:
                    return dict(found[0])
    raise LookupError(f"no {value} in the capture")


async def test_deribit_lists_its_perpetual_in_usd_and_its_options_in_btc(tmp_path: Path) -> None:
    files = capture_files("DERIBIT")
    row = capture_row(files, "/public/get_instruments", "instrument_name", "BTC-PERPETUAL")
    assert (row["contract_size"], row["min_trade_amount"]) == (10.0, 10.0)
    config = f'symbols = ["{PERPETUAL}", "{PUT}"]\n'
    venue, log = start_replay_venue(tmp_path, "deribit", files, config=config)
    try:
        found = await listed(venue)
    finally:
        await stop_venue(venue, log)
    perpetual = found[PERPETUAL]
    assert (perpetual.base_asset, perpetual.quote_asset, perpetual.settle_asset) == ("BTC", "USD", "BTC")
    assert terms(perpetual) == ("0", "1", "USD", "10", "10")
    assert terms(found[PUT]) == ("1", "1", "BTC", "0.1", "0.1")


def with_inverse_swap(files: list[Path], into: Path) -> list[Path]:
    """The OKX_SWAP capture, its instruments answer holding UNI-USD-SWAP as well."""
    copies = []
    for path in files:
        copy = into / path.name
        shutil.copy(path, copy)
        copies.append(copy)
    lines = copies[0].read_text().splitlines()
    url, _, rest = lines[0].partition(" -> ")
    assert "instType=SWAP" in url
    stamp, _, text = rest.partition(": ")
    body = json.loads(text)
    linear = next(row for row in body["data"] if row["instId"] == "BTC-USDT-SWAP")
    body["data"].append(
        dict(linear, instId="UNI-USD-SWAP", instFamily="UNI-USD", uly="UNI-USD", ctType="inverse",
             ctVal="10", ctValCcy="USD", settleCcy="UNI", tickSz="0.001", lotSz="1", minSz="1",
             instIdCode=200100)
    )  # fmt: skip
    lines[0] = f"{url} -> {stamp}: {json.dumps(body, separators=(',', ':'))}"
    copies[0].write_text("\n".join(lines) + "\n")
    return copies


async def test_okx_swaps_list_an_inverse_swap_in_usd_contracts(tmp_path: Path) -> None:
    files = with_inverse_swap(capture_files("OKX_SWAP"), tmp_path)
    config = 'symbols = ["BTC/USDT:USDT", "UNI/USD:UNI"]\n'
    venue, log = start_replay_venue(tmp_path, "okx-swap", files, config=config)
    try:
        found = await listed(venue)
    finally:
        await stop_venue(venue, log)
    uni = found["UNI/USD:UNI"]
    assert (uni.native_symbol, uni.quote_asset, uni.settle_asset) == ("UNI-USD-SWAP", "USD", "UNI")
    assert terms(uni) == ("0", "10", "USD", "1", "1")
    assert terms(found["BTC/USDT:USDT"]) == ("0.01", "0.01", "BTC", "0.01", "0.01")
