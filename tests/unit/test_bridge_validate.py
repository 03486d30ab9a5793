"""LiveData request validation: every bad field named at once; good requests become route kinds."""

from __future__ import annotations

import pytest

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.bridge import validate
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md


def violations(request: lv.SubscribeRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as error:
        validate.subscribe_request(request)
    return {v.field: v.description for v in error.value.violations}


@pytest.mark.parametrize(
    "symbol",
    [
        "BTC/USDT",
        "BTC/USDT:USDT",
        "BTC/USD:BTC",
        "BTC/USD:BTC-250627",
        "ETH/USD:ETH-250627-3000-C",
        "1000PEPE/USDT:USDT",
    ],
)
def test_canonical_symbols_are_accepted(symbol: str) -> None:
    interest = validate.subscribe_request(lv.SubscribeRequest(symbols=[symbol], kinds=[lv.KIND_TRADES]))
    assert interest.symbols == {symbol}


@pytest.mark.parametrize(
    "symbol", ["BTCUSDT", "BTC-USDT", "", "BTC/", "/USDT", "BTC/USDT/", "BTC USDT", "B/" + "X" * 80]
)
def test_malformed_symbols_are_refused(symbol: str) -> None:
    found = violations(lv.SubscribeRequest(symbols=["ETH/USDT", symbol], kinds=[lv.KIND_TRADES]))
    assert list(found) == ["symbols[1]"] and "canonical" in found["symbols[1]"]


def test_every_bad_field_is_named() -> None:
    found = violations(
        lv.SubscribeRequest(
            venues=["Binance"],
            kinds=[lv.KIND_UNSPECIFIED, 99],  # type: ignore[list-item]
            timeframes=[common.TIMEFRAME_UNSPECIFIED],
            overflow_policy=9,  # type: ignore[arg-type]
        )
    )
    assert sorted(found) == [
        "kinds[0]",
        "kinds[1]",
        "overflow_policy",
        "timeframes",
        "timeframes[0]",
        "venues[0]",
    ]


def test_kinds_are_required_and_filters_are_bounded() -> None:
    assert list(violations(lv.SubscribeRequest())) == ["kinds"]
    many = [f"S{i}/USDT" for i in range(validate.MAX_FILTER_ITEMS + 1)]
    assert list(violations(lv.SubscribeRequest(symbols=many, kinds=[lv.KIND_TRADES]))) == ["symbols"]
    venues = [f"v{i}" for i in range(3)]
    symbols = many[: validate.MAX_PAIRS // 3 + 1]
    found = violations(lv.SubscribeRequest(venues=venues, symbols=symbols, kinds=[lv.KIND_TRADES]))
    assert list(found) == ["symbols"] and "leave venues or symbols empty" in found["symbols"]


def test_kinds_and_timeframes_become_route_kinds() -> None:
    interest = validate.subscribe_request(
        lv.SubscribeRequest(
            venues=["sim"],
            kinds=[lv.KIND_BOOK, lv.KIND_BARS, lv.KIND_CANDLES],
            timeframes=[common.TIMEFRAME_1_MINUTE, common.TIMEFRAME_1_HOUR],
            overflow_policy=md.OVERFLOW_POLICY_CONFLATE,
        )
    )
    assert interest.kinds == {"book", "bars.1m", "bars.1h", "candles.1m", "candles.1h"}
    assert interest.venues == {"sim"} and interest.symbols == frozenset()
    assert interest.overflow is Overflow.CONFLATE


def test_no_timeframe_means_every_timeframe_and_no_policy_means_disconnect() -> None:
    interest = validate.subscribe_request(lv.SubscribeRequest(kinds=[lv.KIND_BARS]))
    assert interest.kinds == {f"bars.{tf}" for tf in ("1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w")}
    assert interest.overflow is Overflow.DISCONNECT
