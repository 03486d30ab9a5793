"""A stand-in's listing file (trademesh/venues/replay/listing.py) and Binance's exchangeInfo as it has it
(trademesh/venues/binance/standin/listing.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from trademesh.venues.binance.standin.listing import listed_now
from trademesh.venues.replay.adapter import RestAnswer
from trademesh.venues.replay.listing import ReplayListing


def info(*symbols: dict[str, object]) -> RestAnswer:
    return RestAnswer.json({"timezone": "UTC", "symbols": list(symbols)})


def spot(native: str) -> dict[str, object]:
    return {
        "symbol": native,
        "status": "TRADING",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "stepSize": "0.001"},
            {"filterType": "MIN_NOTIONAL", "minNotional": "10"},
        ],
    }


def write(path: Path, listing: dict[str, object], mtime_ns: int) -> None:
    path.write_text(json.dumps(listing))
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a change whatever the file system's clock resolution


def test_no_file_named_leaves_the_list_as_it_is() -> None:
    answer = info(spot("BTCUSDT"))
    assert listed_now(answer, ReplayListing("").read()) is answer


def test_delisted_symbols_are_left_out_and_rules_written_into_binances_filters(tmp_path: Path) -> None:
    path = tmp_path / "listing.json"
    rules = {"tick_size": "0.1", "lot_size": "0.01", "min_size": "0.02", "min_notional": "5", "active": False}
    write(path, {"delisted": ["ETHUSDT"], "rules": {"BTCUSDT": rules}}, 1_000)
    listing = ReplayListing(str(path)).read()
    body = json.loads(listed_now(info(spot("BTCUSDT"), spot("ETHUSDT")), listing).body)
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT"]
    btc = body["symbols"][0]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert btc["status"] == "BREAK"
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1" and filters["PRICE_FILTER"]["minPrice"] == "0.01"
    assert (filters["LOT_SIZE"]["stepSize"], filters["LOT_SIZE"]["minQty"]) == ("0.01", "0.02")
    assert filters["MIN_NOTIONAL"]["minNotional"] == "5"


def test_the_file_is_read_again_when_it_changes_and_a_bad_one_keeps_the_last(tmp_path: Path) -> None:
    path = tmp_path / "listing.json"
    write(path, {"delisted": ["ETHUSDT"]}, 1_000)
    listing = ReplayListing(str(path))
    assert listing.read().delisted == {"ETHUSDT"}
    write(path, {"delisted": []}, 2_000)  # listed again
    assert listing.read().delisted == frozenset()
    write(path, {"delisted": ["BTCUSDT"]}, 3_000)
    assert listing.read().delisted == {"BTCUSDT"}
    path.write_text("{not json")
    os.utime(path, ns=(4_000, 4_000))
    assert listing.read().delisted == {"BTCUSDT"}, "the last good one kept"
    path.unlink()
    assert listing.read().delisted == frozenset(), "no file: the list as recorded"
