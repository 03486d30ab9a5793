"""Bybit's GET /v5/market/kline on the replay stand-in (trademesh/venues/bybit/standin/history.py), on the
recorded session (fixtures/exchange-captures/BYBIT.*): its format, its range and limit rules, its
paging as ccxt's fetch_ohlcv walks it, and its refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.replay import capture_files
from trademesh.venues.replay.adapter import ReplayAdapter, RestRequest
from trademesh.venues.replay.loader import load_adapter

MINUTE = 60_000
FIRST_MINUTE = 1763712000000  # the session's minutes: the capture runs 08:00:49.6 to 08:01:10.1
LAST_MINUTE = FIRST_MINUTE + MINUTE


@pytest.fixture(scope="module")
def adapter() -> ReplayAdapter:
    return load_adapter("trademesh.venues.bybit.standin", capture_files("BYBIT"))


def kline(adapter: ReplayAdapter, **query: str) -> dict[str, Any]:
    query = {"category": "spot", "symbol": "BTCUSDT", "interval": "1", **query}
    answer = adapter.rest(RestRequest("GET", "api.bybit.com/v5/market/kline", query, ""))
    assert answer.status == 200  # Bybit answers its refusals with HTTP 200 too
    body: dict[str, Any] = json.loads(answer.body)
    return body


def opens(body: dict[str, Any]) -> list[int]:
    return [int(row[0]) for row in body["result"]["list"]]


def recorded_klines() -> dict[int, dict[str, Any]]:
    """The last state of each 1-minute candle the capture's kline.1 stream pushed."""
    found: dict[int, dict[str, Any]] = {}
    for path in capture_files("BYBIT"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"topic":"kline.1.BTCUSDT"' in line:
                data = json.loads(line.split(": ", 1)[1])["data"][0]
                found[int(data["start"])] = data
    return found


def test_a_closed_minute_of_the_session_is_the_candle_bybit_streamed_for_it(adapter: ReplayAdapter) -> None:
    streamed = recorded_klines()[FIRST_MINUTE]
    assert streamed["confirm"] is True
    row = kline(adapter, start=str(FIRST_MINUTE), end=str(FIRST_MINUTE))["result"]["list"]
    fields = ("start", "open", "high", "low", "close", "volume", "turnover")
    assert row == [[str(streamed[name]) for name in fields]]


def test_the_answer_is_bybits_envelope_newest_first_in_strings(adapter: ReplayAdapter) -> None:
    body = kline(adapter, limit="5")
    assert (body["retCode"], body["retMsg"], body["retExtInfo"]) == (0, "OK", {})
    assert body["result"]["category"] == "spot" and body["result"]["symbol"] == "BTCUSDT"
    assert opens(body) == [LAST_MINUTE - n * MINUTE for n in range(5)]  # the latest: the current one first
    for row in body["result"]["list"]:
        assert len(row) == 7 and all(isinstance(cell, str) for cell in row)
        o, h, low, c, volume, turnover = map(Decimal, row[1:])
        assert low <= min(o, c) <= max(o, c) <= h and volume > 0 and turnover > 0


def test_the_first_page_from_start_0_is_the_oldest_candles(adapter: ReplayAdapter) -> None:
    assert opens(kline(adapter, start="0", limit="3")) == [2 * MINUTE, MINUTE, 0]
    # A start inside a minute: the candle holding it is in (ccxt rounds since up to count on it).
    assert opens(kline(adapter, start=str(MINUTE + 1), limit="2")) == [2 * MINUTE, MINUTE]


def test_pages_walked_as_ccxt_walks_them_join_into_one_range(adapter: ReplayAdapter) -> None:
    start = FIRST_MINUTE - 10 * MINUTE  # the made-up past, then the session
    whole = list(reversed(kline(adapter, start=str(start), limit="12")["result"]["list"]))
    paged: list[list[str]] = []
    since = start
    while True:
        page = list(reversed(kline(adapter, start=str(since), limit="5")["result"]["list"]))
        if not page:
            break
        paged += page
        since = int(page[-1][0]) + MINUTE
    assert paged == whole
    assert [int(row[0]) for row in paged] == list(range(start, LAST_MINUTE + 1, MINUTE))


def test_a_middle_page_between_start_and_end_is_the_newest_of_the_range(adapter: ReplayAdapter) -> None:
    start, end = 100 * MINUTE, 200 * MINUTE
    assert opens(kline(adapter, start=str(start), end=str(end), limit="3")) == [
        end,
        end - MINUTE,
        end - 2 * MINUTE,
    ]
    assert len(opens(kline(adapter, start=str(start), end=str(end), limit="1000"))) == 101  # both ends in


def test_the_end_is_the_current_minute_and_nothing_follows(adapter: ReplayAdapter) -> None:
    assert opens(kline(adapter, start=str(LAST_MINUTE), limit="10")) == [LAST_MINUTE]
    assert opens(kline(adapter, start=str(LAST_MINUTE + MINUTE))) == []
    assert len(opens(kline(adapter))) == 200  # the default limit


def test_an_empty_range_answers_an_empty_list(adapter: ReplayAdapter) -> None:
    body = kline(adapter, start=str(5 * MINUTE), end=str(4 * MINUTE))
    assert body["retCode"] == 0 and body["result"]["list"] == []
    # ETHUSDT is listed (instruments-info) but never streamed: no price to make candles of.
    body = kline(adapter, symbol="ETHUSDT")
    assert body["retCode"] == 0 and body["result"]["list"] == []


def test_the_hour_holds_the_session_and_weeks_open_on_monday(adapter: ReplayAdapter) -> None:
    hour = kline(adapter, interval="60", limit="1")["result"]["list"][0]
    assert hour[0] == str(FIRST_MINUTE)  # 08:00 UTC
    week = int(kline(adapter, interval="W", limit="1")["result"]["list"][0][0])
    assert (week // 86_400_000 + 4) % 7 == 1  # a Monday (the epoch was a Thursday, day 4)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"interval": "7"}, "Invalid period!"),
        ({"interval": "M"}, "Invalid period!"),  # months are not served by the stand-in
        ({"limit": "1001"}, "params error: limit must be between 1 and 1000"),
        ({"limit": "0"}, "params error: limit must be between 1 and 1000"),
        ({"start": "yesterday"}, "params error: start must be an integer"),
        ({"symbol": "DOGEUSDT"}, "Not supported symbols"),  # not listed by the capture
        ({"category": "linear"}, "Not supported symbols"),  # the stand-in is Bybit spot
        ({"category": "futures"}, "Illegal category"),
    ],
)
def test_a_bad_query_is_refused_with_retcode_10001(
    adapter: ReplayAdapter, query: dict[str, str], message: str
) -> None:
    body = kline(adapter, **query)
    assert (body["retCode"], body["retMsg"], body["result"]) == (10001, message, {})
