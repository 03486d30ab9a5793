"""The stand-in account's funding payments, as Binance USD-M's income history answers them.

GET /fapi/v1/income (what ccxt's fetch_funding_history calls, with incomeType=FUNDING_FEE)
answers a JSON list, oldest first, of {"symbol", "incomeType", "income", "asset", "info",
"time", "tranId", "tradeId"}: `income` is a signed decimal string (+ received, - paid),
`time` the funding time in ms, `tranId` a number unique on the account, `tradeId` "" for
funding. Filters: symbol, incomeType, startTime and endTime (ms, both included), limit
(default 100, at most 1000; a larger one is refused with code -1130).

GET /fapi/v1/fundingRate (public; ccxt's fetch_funding_rate_history) answers a JSON list,
oldest first, of {"symbol", "fundingRate", "fundingTime", "markPrice"}: `fundingRate` the rate
settled at `fundingTime` (ms, a number; Binance stamps some a few ms past the hour, as two
here are) and `markPrice` the mark it was settled at, decimal strings. Filters: symbol (none:
every symbol's), startTime and endTime (ms, both included; without startTime, the newest
`limit` up to endTime), limit (default 100, at most 1000, else -1130).

The account's payments are fixed: three funding times (00:00, 08:00 and 16:00 UTC of
2025-02-19, the day the capture was recorded, all before it) on SUSHIUSDT (streamed by
the capture) and BTCUSDT (listed by its exchangeInfo, not streamed). The rate history holds
both symbols' rates at those and the three funding times of the day before (fixed values,
not the real ones of those days).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer

__all__ = ["FUNDING_RATES", "INCOME", "funding_rates", "income"]

_MAX_LIMIT = 1000

INCOME: tuple[dict[str, Any], ...] = tuple(
    {
        "symbol": symbol,
        "incomeType": "FUNDING_FEE",
        "income": amount,
        "asset": "USDT",
        "info": "FUNDING_FEE",
        "time": time_ms,
        "tranId": tran_id,
        "tradeId": "",
    }
    for symbol, amount, time_ms, tran_id in (
        ("SUSHIUSDT", "-0.01234500", 1739923200000, 9689322392),
        ("BTCUSDT", "0.52100000", 1739923200000, 9689322393),
        ("SUSHIUSDT", "0.00412000", 1739952000000, 9689410017),
        ("BTCUSDT", "-1.04750000", 1739952000000, 9689410018),
        ("SUSHIUSDT", "-0.00089100", 1739980800000, 9689498741),
    )
)


_HOUR_MS = 3_600_000
_DAY = 1739923200000  # 2025-02-19 00:00 UTC

FUNDING_RATES: tuple[dict[str, Any], ...] = tuple(
    {"symbol": symbol, "fundingRate": rate, "fundingTime": time_ms, "markPrice": mark}
    for symbol, rate, time_ms, mark in sorted(
        (
            ("BTCUSDT", "0.00010000", _DAY - 24 * _HOUR_MS, "95712.40000000"),
            ("SUSHIUSDT", "0.00005000", _DAY - 24 * _HOUR_MS, "0.78420000"),
            ("BTCUSDT", "0.00008731", _DAY - 16 * _HOUR_MS, "96044.10000000"),
            ("SUSHIUSDT", "-0.00021544", _DAY - 16 * _HOUR_MS + 2, "0.76910000"),
            ("BTCUSDT", "0.00004970", _DAY - 8 * _HOUR_MS, "95530.00000000"),
            ("SUSHIUSDT", "0.00010000", _DAY - 8 * _HOUR_MS, "0.77205000"),
            ("BTCUSDT", "0.00006112", _DAY, "95860.27000000"),
            ("SUSHIUSDT", "-0.00037019", _DAY, "0.75480000"),
            ("BTCUSDT", "0.00010000", _DAY + 8 * _HOUR_MS + 3, "96351.85000000"),
            ("SUSHIUSDT", "0.00012406", _DAY + 8 * _HOUR_MS, "0.76030000"),
            ("BTCUSDT", "-0.00002475", _DAY + 16 * _HOUR_MS, "96912.50000000"),
            ("SUSHIUSDT", "-0.00004650", _DAY + 16 * _HOUR_MS, "0.74915000"),
        ),
        key=lambda row: (row[2], row[0]),
    )
)


def _history(
    params: dict[str, str], rows: Sequence[dict[str, Any]], time_key: str, fields: tuple[str, ...]
) -> tuple[list[dict[str, Any]], int] | RestAnswer:
    """The rows that match a history query (each of `fields` the query names, `time_key` within
    startTime and endTime) with its limit; or Binance's refusal of the limit."""
    limit = int(params.get("limit", "100"))
    if not 1 <= limit <= _MAX_LIMIT:
        return RestAnswer.json({"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, 400)
    start, end = int(params.get("startTime", "0")), int(params.get("endTime", str(2**63)))
    found = [
        row
        for row in rows
        if start <= row[time_key] <= end and all(params.get(f, row[f]) == row[f] for f in fields)
    ]
    return found, limit


def funding_rates(params: dict[str, str]) -> RestAnswer:
    """GET /fapi/v1/fundingRate: the rates settled that match the query, oldest first."""
    query = _history(params, FUNDING_RATES, "fundingTime", ("symbol",))
    if isinstance(query, RestAnswer):
        return query
    found, limit = query
    return RestAnswer.json(found[:limit] if "startTime" in params else found[-limit:])


def income(params: dict[str, str]) -> RestAnswer:
    """GET /fapi/v1/income: the account's funding payments that match the query."""
    query = _history(params, INCOME, "time", ("incomeType", "symbol"))
    if isinstance(query, RestAnswer):
        return query
    found, limit = query
    return RestAnswer.json(found[:limit])
