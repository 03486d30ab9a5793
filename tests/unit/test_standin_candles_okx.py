"""OKX's GET /api/v5/market/candles and /market/history-candles on the replay stand-in
(trademesh/venues/okx/standin/history.py), on the written-from-the-docs sessions (OKX.*, OKX_SWAP.*,
OKX_INVERSE.*): the format, the `after`/`before` cursors and limits, the pages ccxt's
fetch_ohlcv asks for, the three instrument kinds' volumes, and the refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.replay import capture_files
from trademesh.venues.replay.adapter import ReplayAdapter, RestRequest
from trademesh.venues.replay.loader import load_adapter

MINUTE = 60_000
FIRST_MINUTE = 1740000000000  # the sessions run 21:20:50 to 21:21:10 UTC
LAST_MINUTE = FIRST_MINUTE + MINUTE
HISTORY = "/api/v5/market/history-candles"
RECENT = "/api/v5/market/candles"
D = Decimal


@pytest.fixture(scope="module")
def spot() -> ReplayAdapter:
    return load_adapter("trademesh.venues.okx.standin", capture_files("OKX"))


def candles(adapter: ReplayAdapter, path: str = HISTORY, **query: str) -> dict[str, Any]:
    query = {"instId": "BTC-USDT", **query}
    answer = adapter.rest(RestRequest("GET", "www.okx.com" + path, query, ""))
    assert answer.status == 200
    body: dict[str, Any] = json.loads(answer.body)
    return body


def opens(body: dict[str, Any]) -> list[int]:
    assert body["code"] == "0", body
    return [int(row[0]) for row in body["data"]]


def ccxt_window(since: int, limit: int) -> dict[str, str]:
    """The cursors ccxt's fetch_ohlcv sends for a since and a limit (before excluded, after excluded)."""
    return {
        "before": str(since - 1 if since > 1 else 0),
        "after": str(since + limit * MINUTE),
        "limit": str(limit),
    }


def captured_trades(prefix: str) -> list[dict[str, Any]]:
    found = []
    for path in capture_files(prefix):
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"channel":"trades"' in line and '"data"' in line:
                found += json.loads(line.split(": ", 1)[1])["data"]
    return found


def test_the_answer_is_okxs_envelope_newest_first_in_strings(spot: ReplayAdapter) -> None:
    body = candles(spot, limit="3")
    assert (body["code"], body["msg"]) == ("0", "")
    assert opens(body) == [LAST_MINUTE, FIRST_MINUTE, FIRST_MINUTE - MINUTE]
    assert [row[8] for row in body["data"]] == ["0", "1", "1"], "only the current candle is unconfirmed"
    for row in body["data"]:
        assert len(row) == 9 and all(isinstance(cell, str) for cell in row)
        o, h, low, c = map(D, row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
        assert row[6] == row[7] and D(row[6]) > 0  # spot: volCcy and volCcyQuote are both the quote


def test_a_session_minute_is_its_trades(spot: ReplayAdapter) -> None:
    trades = [t for t in captured_trades("OKX") if FIRST_MINUTE <= int(t["ts"]) < LAST_MINUTE]
    trades.sort(key=lambda t: int(t["ts"]))
    row = candles(spot, before=str(FIRST_MINUTE - 1), after=str(LAST_MINUTE))["data"]
    prices = [D(t["px"]) for t in trades]
    expected = [prices[0], max(prices), min(prices), prices[-1], sum(D(t["sz"]) for t in trades)]
    assert [D(cell) for cell in row[0][1:6]] == expected
    assert D(row[0][6]) == sum((D(t["px"]) * D(t["sz"]) for t in trades), D(0)).quantize(D("1e-8"))


def test_the_first_page_ccxt_asks_from_0(spot: ReplayAdapter) -> None:
    # before=0 excludes the candle at 0 and after=3 minutes the one at 3 minutes, as OKX's cursors
    # exclude their own times: from 0, ccxt's window holds one candle fewer than its limit.
    assert opens(candles(spot, **ccxt_window(0, 3))) == [2 * MINUTE, MINUTE]
    assert opens(candles(spot, **ccxt_window(MINUTE, 300))) == [MINUTE * n for n in range(300, 0, -1)]


def test_pages_walked_as_ccxt_walks_them_join_into_one_range(spot: ReplayAdapter) -> None:
    start = FIRST_MINUTE - 7 * MINUTE
    walked: list[int] = []
    since = start
    while page := sorted(opens(candles(spot, **ccxt_window(since, 4)))):
        walked += page
        since = page[-1] + MINUTE
    assert walked == list(range(start, LAST_MINUTE + 1, MINUTE))


def test_pages_walked_back_with_after_join_into_one_range(spot: ReplayAdapter) -> None:
    whole = candles(spot, limit="10")["data"]
    walked: list[list[str]] = []
    while len(walked) < 10:
        cursor = {"after": walked[-1][0]} if walked else {}
        walked += candles(spot, limit="3", **cursor)["data"]
    assert walked[:10] == whole


def test_a_middle_page_between_before_and_after_is_its_newest(spot: ReplayAdapter) -> None:
    assert opens(candles(spot, before=str(100 * MINUTE), after=str(200 * MINUTE), limit="2")) == [
        199 * MINUTE,
        198 * MINUTE,
    ]
    # `before` alone: the latest candles, all newer than it.
    assert opens(candles(spot, before=str(FIRST_MINUTE - 2 * MINUTE), limit="300")) == [
        LAST_MINUTE,
        FIRST_MINUTE,
        FIRST_MINUTE - MINUTE,
    ]


def test_the_end_and_the_recent_endpoint_keeps_1440_candles(spot: ReplayAdapter) -> None:
    assert opens(candles(spot, before=str(LAST_MINUTE))) == []
    oldest_recent = LAST_MINUTE - 1439 * MINUTE
    assert opens(candles(spot, RECENT, after=str(oldest_recent + MINUTE), limit="5")) == [oldest_recent]
    assert opens(candles(spot, RECENT, after=str(oldest_recent))) == []
    assert len(opens(candles(spot, HISTORY, after=str(oldest_recent)))) == 100  # the default limit


def test_an_empty_range_answers_no_data(spot: ReplayAdapter) -> None:
    assert opens(candles(spot, before=str(5 * MINUTE), after=str(6 * MINUTE))) == []
    # ETH-USDT is listed but never streamed: no price to make candles of.
    assert opens(candles(spot, instId="ETH-USDT")) == []


def test_hong_kong_and_utc_days(spot: ReplayAdapter) -> None:
    hong_kong = opens(candles(spot, bar="1D", limit="1"))[0]
    utc = opens(candles(spot, bar="1Dutc", limit="1"))[0]
    assert (hong_kong % 86_400_000, utc % 86_400_000) == (16 * 3_600_000, 0)  # 00:00 at UTC+8


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ({"bar": "7m"}, "51000", "Parameter bar error"),
        ({"bar": "1M"}, "51000", "Parameter bar error"),  # months are not served by the stand-in
        ({"limit": "301"}, "51000", "Parameter limit error"),
        ({"limit": "0"}, "51000", "Parameter limit error"),
        ({"after": "soon"}, "51000", "Parameter after error"),
        ({"instId": ""}, "50014", "Parameter instId can not be empty."),
        ({"instId": "DOGE-USDT"}, "51001", "Instrument ID does not exist"),
    ],
)
def test_a_bad_query_is_refused_with_okxs_code(
    spot: ReplayAdapter, query: dict[str, str], code: str, message: str
) -> None:
    assert candles(spot, **query) == {"code": code, "msg": message, "data": []}


@pytest.mark.parametrize(
    ("prefix", "inst_id", "ct_val", "inverse"),
    [("OKX_SWAP", "BTC-USDT-SWAP", D("0.01"), False), ("OKX_INVERSE", "BTC-USD-SWAP", D(100), True)],
)
def test_a_swaps_volumes_are_contracts_coin_and_quote(
    prefix: str, inst_id: str, ct_val: Decimal, inverse: bool
) -> None:
    adapter = load_adapter("trademesh.venues.okx_swap.standin", capture_files(prefix))
    trades = [t for t in captured_trades(prefix) if FIRST_MINUTE <= int(t["ts"]) < LAST_MINUTE]
    row = candles(adapter, instId=inst_id, before=str(FIRST_MINUTE - 1), after=str(LAST_MINUTE))["data"][0]
    contracts = sum((D(t["sz"]) for t in trades), D(0))
    if inverse:  # contracts of 100 USD: the coin is their worth over the price
        coin = sum((D(t["sz"]) * ct_val / D(t["px"]) for t in trades), D(0))
        quote = contracts * ct_val
    else:
        coin = contracts * ct_val
        quote = sum((D(t["sz"]) * ct_val * D(t["px"]) for t in trades), D(0))
    assert (D(row[5]), D(row[6]), D(row[7])) == (
        contracts,
        coin.quantize(D("1e-8")),
        quote.quantize(D("1e-8")),
    )
