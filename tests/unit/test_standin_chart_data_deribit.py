"""Deribit's public/get_tradingview_chart_data on the replay stand-in
(trademesh/venues/deribit/standin/history.py), on the recorded session of 2021
(fixtures/exchange-captures/DERIBIT.*, options that did not trade in it): the JSON-RPC format,
both timestamps included, the windows ccxt's fetch_ohlcv asks for, "no_data", and the
refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.replay import capture_files
from trademesh.venues.replay.adapter import ReplayAdapter, RestRequest
from trademesh.venues.replay.loader import load_adapter

MINUTE = 60_000
SESSION_MINUTE = 1626993720000  # the session runs 22:42:03.8 to 22:42:34.2 UTC
INSTRUMENT = "BTC-30JUL21-24000-P"
SERIES = ("ticks", "open", "high", "low", "close", "volume", "cost")


@pytest.fixture(scope="module")
def adapter() -> ReplayAdapter:
    return load_adapter("trademesh.venues.deribit.standin", capture_files("DERIBIT"))


def chart(adapter: ReplayAdapter, **query: str) -> tuple[int, dict[str, Any]]:
    query = {"instrument_name": INSTRUMENT, "resolution": "1", **query}
    path = "www.deribit.com/api/v2/public/get_tradingview_chart_data"
    answer = adapter.rest(RestRequest("GET", path, query, ""))
    body: dict[str, Any] = json.loads(answer.body)
    return answer.status, body


def ticks(adapter: ReplayAdapter, start: int, end: int, **query: str) -> list[int]:
    status, body = chart(adapter, start_timestamp=str(start), end_timestamp=str(end), **query)
    assert status == 200 and body["jsonrpc"] == "2.0", body
    found: list[int] = body["result"]["ticks"]
    return found


def ccxt_window(since: int, limit: int) -> tuple[int, int]:
    """ccxt's start and end timestamps for a since and a limit."""
    start = max(since - 1, 0)
    return start, start + limit * MINUTE


def test_the_answer_is_parallel_series_oldest_first(adapter: ReplayAdapter) -> None:
    status, body = chart(
        adapter, start_timestamp=str(SESSION_MINUTE - 2 * MINUTE), end_timestamp=str(SESSION_MINUTE)
    )
    result = body["result"]
    assert status == 200 and set(result) == {"status", *SERIES} and result["status"] == "ok"
    assert result["ticks"] == [SESSION_MINUTE - 2 * MINUTE, SESSION_MINUTE - MINUTE, SESSION_MINUTE]
    assert all(len(result[name]) == 3 for name in SERIES)
    for o, h, low, c in zip(result["open"], result["high"], result["low"], result["close"], strict=True):
        assert all(isinstance(v, float) for v in (o, h, low, c)) and low <= min(o, c) <= max(o, c) <= h
    # The session minute: no trade of it in the capture, a flat candle with no volume.
    assert result["volume"][-1] == result["cost"][-1] == 0
    assert len({result[name][-1] for name in ("open", "high", "low", "close")}) == 1


def test_both_timestamps_are_included(adapter: ReplayAdapter) -> None:
    assert ticks(adapter, MINUTE, 3 * MINUTE) == [MINUTE, 2 * MINUTE, 3 * MINUTE]
    assert ticks(adapter, MINUTE + 1, 3 * MINUTE - 1) == [2 * MINUTE]


def test_ccxts_windows_page_from_0_and_join(adapter: ReplayAdapter) -> None:
    assert ticks(adapter, *ccxt_window(0, 3)) == [0, MINUTE, 2 * MINUTE, 3 * MINUTE]  # ccxt keeps 3
    since, walked = SESSION_MINUTE - 6 * MINUTE, []
    while page := [t for t in ticks(adapter, *ccxt_window(since, 4)) if t >= since][:4]:
        walked += page
        since = page[-1] + MINUTE
    assert walked == list(range(SESSION_MINUTE - 6 * MINUTE, SESSION_MINUTE + 1, MINUTE))


def test_a_long_range_answers_its_newest_5000(adapter: ReplayAdapter) -> None:
    found = ticks(adapter, 0, SESSION_MINUTE)
    assert len(found) == 5000 and found[-1] == SESSION_MINUTE


def test_after_the_session_and_an_empty_range_answer_no_data(adapter: ReplayAdapter) -> None:
    for start, end in ((SESSION_MINUTE + MINUTE, SESSION_MINUTE + 9 * MINUTE), (MINUTE + 1, 2 * MINUTE - 1)):
        status, body = chart(adapter, start_timestamp=str(start), end_timestamp=str(end))
        assert (status, body["result"]) == (200, {"status": "no_data", **{name: [] for name in SERIES}})
    # BTC-PERPETUAL is listed (get_instruments) but never streamed: no price to make candles of.
    status, body = chart(adapter, instrument_name="BTC-PERPETUAL", start_timestamp="0", end_timestamp="60000")
    assert (status, body["result"]["status"], body["result"]["ticks"]) == (200, "no_data", [])


def test_the_made_up_past_is_near_the_sessions_first_price(adapter: ReplayAdapter) -> None:
    _status, body = chart(adapter, start_timestamp="0", end_timestamp=str(SESSION_MINUTE), resolution="1D")
    closes = [Decimal(str(c)) for c in body["result"]["close"]]
    assert closes and all(Decimal("0.001") <= c <= Decimal("0.01") for c in closes), "an option priced in BTC"


@pytest.mark.parametrize(
    ("query", "param", "reason"),
    [
        ({"resolution": "7"}, "resolution", "must be one of 1, 3, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1D"),
        ({"end_timestamp": "later"}, "end_timestamp", "wrong format"),
        ({"start_timestamp": None}, "start_timestamp", "missing"),
        ({"instrument_name": "DOGE-PERPETUAL"}, "instrument_name", "wrong format"),
    ],
)
def test_a_bad_query_is_refused_as_invalid_params(
    adapter: ReplayAdapter, query: dict[str, str | None], param: str, reason: str
) -> None:
    asked = {"start_timestamp": "0", "end_timestamp": str(MINUTE), **query}
    status, body = chart(adapter, **{k: v for k, v in asked.items() if v is not None})
    error = {"code": -32602, "message": "Invalid params", "data": {"reason": reason, "param": param}}
    assert (status, body) == (400, {"jsonrpc": "2.0", "error": error, "testnet": False})
