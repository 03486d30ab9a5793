"""Coinbase's product candles on the replay stand-in (trademesh/venues/coinbase/standin/history.py), on the
written-from-the-docs session (fixtures/exchange-captures/COINBASE.*): the format, start
(included) and end (excluded) in seconds, the 350 candles at most, no candle for a quiet
minute, the windows ccxt's fetch_ohlcv asks for, and the refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.replay import capture_files
from trademesh.venues.replay.adapter import ReplayAdapter, RestRequest
from trademesh.venues.replay.loader import load_adapter

MINUTE_S = 60
SESSION_MINUTE = 1763712240  # the session runs 08:04:49.8 to 08:05:10.0 UTC
NEXT_MINUTE = SESSION_MINUTE + MINUTE_S
PUBLIC = "api.coinbase.com/api/v3/brokerage/market/products/{}/candles"
SIGNED = "api.coinbase.com/api/v3/brokerage/products/{}/candles"
D = Decimal


@pytest.fixture(scope="module")
def adapter() -> ReplayAdapter:
    return load_adapter("trademesh.venues.coinbase.standin", capture_files("COINBASE"))


def get(
    adapter: ReplayAdapter, product: str = "BTC-USD", path: str = PUBLIC, **query: str
) -> tuple[int, Any]:
    query = {"granularity": "ONE_MINUTE", **query}
    answer = adapter.rest(RestRequest("GET", path.format(product), query, ""))
    return answer.status, json.loads(answer.body)


def starts(adapter: ReplayAdapter, start: int, end: int, **query: str) -> list[int]:
    status, body = get(adapter, start=str(start), end=str(end), **query)
    assert status == 200, body
    return [int(candle["start"]) for candle in body["candles"]]


def ccxt_window(since_s: int, limit: int) -> tuple[int, int]:
    """ccxt's start and end for a since and a limit (end = start + limit granularities)."""
    return since_s, since_s + limit * MINUTE_S


def captured_trades() -> dict[str, dict[str, str]]:
    """The capture's market trades by id (the snapshot repeats none of the updates' here, but
    a trade is counted once whatever)."""
    found: dict[str, dict[str, str]] = {}
    for path in capture_files("COINBASE"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"channel":"market_trades"' in line and '"events"' in line:
                for event in json.loads(line.split(": ", 1)[1])["events"]:
                    found.update((t["trade_id"], t) for t in event["trades"])
    return found


def test_the_answer_is_coinbases_newest_first_in_strings(adapter: ReplayAdapter) -> None:
    status, body = get(adapter, start=str(SESSION_MINUTE - 3 * MINUTE_S), end=str(NEXT_MINUTE + MINUTE_S))
    assert status == 200 and list(body) == ["candles"]
    assert [int(c["start"]) for c in body["candles"]] == [NEXT_MINUTE - n * MINUTE_S for n in range(5)]
    for candle in body["candles"]:
        assert set(candle) == {"start", "low", "high", "open", "close", "volume"}
        o, h, low, c = (D(candle[k]) for k in ("open", "high", "low", "close"))
        assert low <= min(o, c) <= max(o, c) <= h and D(candle["volume"]) > 0


def test_a_session_minute_is_its_trades(adapter: ReplayAdapter) -> None:
    minute = sorted(
        (t for t in captured_trades().values() if t["time"].startswith("2025-11-21T08:04")),
        key=lambda t: t["time"],
    )
    status, body = get(adapter, start=str(SESSION_MINUTE), end=str(NEXT_MINUTE))
    assert status == 200
    prices = [D(t["price"]) for t in minute]
    expected = {
        "start": str(SESSION_MINUTE),
        "open": prices[0],
        "high": max(prices),
        "low": min(prices),
        "close": prices[-1],
        "volume": sum((D(t["size"]) for t in minute), D(0)),
    }
    (candle,) = body["candles"]
    assert {k: (v if k == "start" else D(v)) for k, v in candle.items()} == expected


def test_ccxts_windows_page_from_0_and_join(adapter: ReplayAdapter) -> None:
    assert starts(adapter, *ccxt_window(0, 3)) == [2 * MINUTE_S, MINUTE_S, 0]  # end excluded
    since, walked = SESSION_MINUTE - 5 * MINUTE_S, []
    while page := sorted(starts(adapter, *ccxt_window(since, 2))):
        walked += page
        since = page[-1] + MINUTE_S
    assert walked == list(range(SESSION_MINUTE - 5 * MINUTE_S, NEXT_MINUTE + 1, MINUTE_S))


def test_a_middle_page_is_the_newest_limit_of_the_range(adapter: ReplayAdapter) -> None:
    assert starts(adapter, 600, 1200, limit="2") == [1140, 1080]
    assert len(starts(adapter, 0, 350 * MINUTE_S)) == 350


def test_the_end_and_an_empty_range(adapter: ReplayAdapter) -> None:
    assert starts(adapter, NEXT_MINUTE + MINUTE_S, NEXT_MINUTE + 10 * MINUTE_S) == []
    assert starts(adapter, 600, 600) == []
    # ETH-USD is listed (the product list) but never streamed: no price to make candles of.
    assert get(adapter, "ETH-USD", start="0", end="600") == (200, {"candles": []})


@pytest.mark.parametrize(
    ("query", "status", "error", "message"),
    [
        ({"granularity": "ONE_WEEK"}, 400, "INVALID_ARGUMENT", "granularity argument is invalid"),
        ({"granularity": "FOUR_HOUR"}, 400, "INVALID_ARGUMENT", "granularity argument is invalid"),
        ({"start": ""}, 400, "INVALID_ARGUMENT", "start and end must be UNIX timestamps in seconds"),
        (
            {"end": str(351 * MINUTE_S)},
            400,
            "INVALID_ARGUMENT",
            "number of candles requested should be less than 350",
        ),
        ({"limit": "351"}, 400, "INVALID_ARGUMENT", "limit must be between 1 and 350"),
        ({"product": "DOGE-USD"}, 404, "NOT_FOUND", "ProductID is invalid"),
    ],
)
def test_a_bad_query_is_refused_in_coinbases_error_format(
    adapter: ReplayAdapter, query: dict[str, str], status: int, error: str, message: str
) -> None:
    query = {"start": "0", "end": "60", **query}
    product = query.pop("product", "BTC-USD")
    got = get(adapter, product, **query)
    assert got == (status, {"error": error, "error_details": message, "message": message})


def test_four_hours_on_the_signed_path_only(adapter: ReplayAdapter) -> None:
    status, body = get(adapter, path=SIGNED, granularity="FOUR_HOUR", start="0", end=str(4 * 3600))
    assert status == 200 and [c["start"] for c in body["candles"]] == ["0"]
