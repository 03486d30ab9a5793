"""The stand-in account's funding payments, as Binance USD-M's income history answers them.

GET /fapi/v1/income (what ccxt's fetch_funding_history calls, with incomeType=FUNDING_FEE)
answers a JSON list, oldest first, of {"symbol", "incomeType", "income", "asset", "info",
"time", "tranId", "tradeId"}: `income` is a signed decimal string (+ received, - paid),
`time` the funding time in ms, `tranId` a number unique on the account, `tradeId` "" for
funding. Filters: symbol, incomeType, startTime and endTime (ms, both included), limit
(default 100, at most 1000; a larger one is refused with code -1130).

The account's payments are fixed: three funding times (00:00, 08:00 and 16:00 UTC of
2025-02-19, the day the capture was recorded, all before it) on SUSHIUSDT (streamed by
the capture) and BTCUSDT (listed by its exchangeInfo, not streamed).
"""

from __future__ import annotations

from typing import Any

from venues.replay.adapter import RestAnswer

__all__ = ["INCOME", "income"]

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


def income(params: dict[str, str]) -> RestAnswer:
    """GET /fapi/v1/income: the account's funding payments that match the query."""
    limit = int(params.get("limit", "100"))
    if not 1 <= limit <= _MAX_LIMIT:
        return RestAnswer.json({"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, 400)
    start, end = int(params.get("startTime", "0")), int(params.get("endTime", str(2**63)))
    found = [
        row
        for row in INCOME
        if params.get("incomeType", row["incomeType"]) == row["incomeType"]
        and params.get("symbol", row["symbol"]) == row["symbol"]
        and start <= row["time"] <= end
    ]
    return RestAnswer.json(found[:limit])
