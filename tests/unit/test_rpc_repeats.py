"""A request list's repeated values are dropped at the edge (issue 57, item 8): every repeated
string or enum field of a request is a set, so a value named 10,000 times is one value, in its
first place; numbers, messages and maps are left alone."""

from __future__ import annotations

import time

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.platform.rpc.decode import RequestDecoder
from trademesh.core.platform.rpc.limits import MAX_ITEMS
from trademesh.core.platform.rpc.repeats import drop_repeats
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.patch.v1 import patch_pb2 as pt


def test_each_value_keeps_its_first_place_and_its_repeats_go() -> None:
    request = md.SubscribeRequest(
        symbols=["ETH/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT"],
        channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_TRADES],
    )
    assert drop_repeats(request) == 3
    assert list(request.symbols) == ["ETH/USDT", "BTC/USDT", "SOL/USDT"]
    assert list(request.channels) == [md.CHANNEL_TRADES, md.CHANNEL_BOOK]


def test_lists_inside_nested_messages_lose_their_repeats_too() -> None:
    request = ow.GetBoardRequest(filter=ow.MarketFilter(venues=["sim"] * 3, symbols=["BTC/USDT", "BTC/USDT"]))
    assert drop_repeats(request) == 3
    assert (list(request.filter.venues), list(request.filter.symbols)) == (["sim"], ["BTC/USDT"])


def test_a_list_without_repeats_and_a_map_are_left_as_they_are() -> None:
    same = pt.ParamValue(text_value="1")
    request = pt.AddModuleRequest(patch_id="p", module_id="m", params={"a": same, "b": same})
    assert drop_repeats(request) == 0 and dict(request.params) == {"a": same, "b": same}
    distinct = bt.StartBacktestRequest(options=bt.BacktestOptions(strategies=["trend", "order_flow"]))
    assert drop_repeats(distinct) == 0 and list(distinct.options.strategies) == ["trend", "order_flow"]


def test_the_edge_hands_a_handler_one_strategy_for_ten_thousand_names_quickly() -> None:
    raw = bt.StartBacktestRequest(
        options=bt.BacktestOptions(strategies=["trend"] * MAX_ITEMS)
    ).SerializeToString()
    began = time.perf_counter()
    request = RequestDecoder(bt.StartBacktestRequest.FromString)(raw)
    assert time.perf_counter() - began < 0.5  # a few ms: one set of the values
    assert list(request.options.strategies) == ["trend"]
