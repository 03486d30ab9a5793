"""The stand-in account's funding payments, as OKX's bills answer them.

ccxt's fetch_funding_history reads GET /api/v5/account/bills-archive (the last three months;
/account/bills, the last seven days, has the same format and is served alike) with
type=8 (funding fee), instType=SWAP and, for one symbol, ctType and ccy; it filters by
symbol and time itself. OKX answers {"code":"0","msg":"","data":[bill...]}, newest first,
each bill strings throughout: billId (unique on the account), instId, ccy, balChg (signed:
+ received, - paid), bal (the balance after it), pnl (= balChg for funding), sz (the
position's contracts), subType 173 (funding fee expense) or 174 (income), ts (ms).
Filters served: type, subType, instType, instId, ccy, ctType, begin and end (ms, both
included), after (bills older than this billId) and before (newer), limit (default 100, at
most 100; a larger one is refused with code 51000).

GET /api/v5/public/funding-rate-history (public; ccxt's fetch_funding_rate_history) answers
{"code":"0","msg":"","data":[rate...]}, newest first, each rate strings throughout: instType,
instId, formulaType, fundingRate (the rate set before the funding time), realizedRate (the rate
settled at it), fundingTime (ms), method. Filters: instId (required: 50014 without it, 51001
for one the venue does not list), before and after (rates newer, older than a funding time in
ms, both excluded; both given, the newest `limit` between), limit (default 400, at most 400,
else 51000).

The account's payments are fixed: three funding times (00:00, 08:00 and 16:00 UTC of
2025-02-19, the day the capture was recorded, all before it) on BTC-USDT-SWAP (streamed by
the capture) and ETH-USDT-SWAP (listed by its instruments, not streamed), settled in USDT.
The rate history holds both instruments' rates at those and the three funding times of the
day before (fixed values, not the real ones of those days); at one funding time the realized
rate differs from the one set, as OKX's may when the rate is capped at settlement.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer

__all__ = ["BILLS", "FUNDING_RATES", "bills", "funding_rate_history"]

_MAX_LIMIT = 100
_MAX_RATES = 400
_HOUR_MS = 3_600_000
_DAY = 1739923200000  # 2025-02-19 00:00 UTC
_START_BALANCE = Decimal("100000")


def _bills() -> tuple[dict[str, str], ...]:
    rows = (
        ("BTC-USDT-SWAP", "-0.2851", "9", 1739923200000, "2189532170416541696"),
        ("ETH-USDT-SWAP", "0.0712", "4", 1739923200000, "2189532170416541697"),
        ("BTC-USDT-SWAP", "0.1127", "9", 1739952000000, "2189652967823974400"),
        ("BTC-USDT-SWAP", "-0.3904", "12", 1739980800000, "2189773765231407104"),
        ("ETH-USDT-SWAP", "-0.0338", "4", 1739980800000, "2189773765231407105"),
    )
    balance, out = _START_BALANCE, []
    for inst_id, change, size, ts, bill_id in rows:
        balance += Decimal(change)
        out.append(_bill(inst_id, change, size, ts, bill_id, balance))
    return tuple(reversed(out))  # newest first, as OKX lists them


def _bill(inst_id: str, change: str, size: str, ts: int, bill_id: str, balance: Decimal) -> dict[str, str]:
    return {
        "bal": str(balance),
        "balChg": change,
        "billId": bill_id,
        "ccy": "USDT",
        "clOrdId": "",
        "execType": "",
        "fee": "0",
        "fillFwdPx": "",
        "fillIdxPx": "",
        "fillMarkPx": "",
        "fillMarkVol": "",
        "fillPxUsd": "",
        "fillPxVol": "",
        "fillTime": "",
        "from": "",
        "instId": inst_id,
        "instType": "SWAP",
        "interest": "0",
        "mgnMode": "cross",
        "notes": "",
        "ordId": "",
        "pnl": change,
        "posBal": "0",
        "posBalChg": "0",
        "px": "",
        "subType": "173" if change.startswith("-") else "174",
        "sz": size,
        "tag": "",
        "to": "",
        "tradeId": "",
        "ts": str(ts),
        "type": "8",
    }


BILLS: tuple[dict[str, str], ...] = _bills()

_EXACT = ("type", "subType", "instType", "instId", "ccy")


def _matches(bill: dict[str, Any], params: dict[str, str]) -> bool:
    if any(key in params and params[key] != bill[key] for key in _EXACT):
        return False
    if params.get("ctType", "linear") != "linear":  # every bill here is of a linear swap
        return False
    ts, bill_id = int(bill["ts"]), int(bill["billId"])
    if not int(params.get("begin", "0")) <= ts <= int(params.get("end", str(2**63))):
        return False
    if "after" in params and bill_id >= int(params["after"]):
        return False
    return "before" not in params or bill_id > int(params["before"])


def bills(params: dict[str, str]) -> RestAnswer:
    """GET /api/v5/account/bills(-archive): the account's bills that match the query."""
    limit = int(params.get("limit", str(_MAX_LIMIT)))
    if not 1 <= limit <= _MAX_LIMIT:
        return RestAnswer.json({"code": "51000", "msg": "Parameter limit error", "data": []})
    found = [bill for bill in BILLS if _matches(bill, params)]
    return RestAnswer.json({"code": "0", "msg": "", "data": found[:limit]})


def _rate(inst_id: str, time_ms: int, rate: str, realized: str) -> dict[str, str]:
    return {
        "formulaType": "withRate",
        "fundingRate": rate,
        "fundingTime": str(time_ms),
        "instId": inst_id,
        "instType": "SWAP",
        "method": "current_period",
        "realizedRate": realized,
    }


FUNDING_RATES: tuple[dict[str, str], ...] = tuple(
    _rate(inst_id, time_ms, rate, realized or rate)
    for inst_id, time_ms, rate, realized in sorted(
        (
            ("BTC-USDT-SWAP", _DAY - 24 * _HOUR_MS, "0.0000810537224163", ""),
            ("ETH-USDT-SWAP", _DAY - 24 * _HOUR_MS, "0.0000412853390077", ""),
            ("BTC-USDT-SWAP", _DAY - 16 * _HOUR_MS, "0.0000532910483011", ""),
            ("ETH-USDT-SWAP", _DAY - 16 * _HOUR_MS, "-0.0000217405881921", ""),
            ("BTC-USDT-SWAP", _DAY - 8 * _HOUR_MS, "0.0000694418307752", ""),
            ("ETH-USDT-SWAP", _DAY - 8 * _HOUR_MS, "0.0000100000000000", ""),
            ("BTC-USDT-SWAP", _DAY, "0.0000312976542860", ""),
            ("ETH-USDT-SWAP", _DAY, "-0.0000583322017546", ""),
            ("BTC-USDT-SWAP", _DAY + 8 * _HOUR_MS, "-0.0000126470933285", ""),
            ("ETH-USDT-SWAP", _DAY + 8 * _HOUR_MS, "0.0000447120038116", ""),
            ("BTC-USDT-SWAP", _DAY + 16 * _HOUR_MS, "0.0001127551308204", ""),
            ("ETH-USDT-SWAP", _DAY + 16 * _HOUR_MS, "0.0003750000000000", "0.0003000000000000"),
        ),
        key=lambda row: (-row[1], row[0]),  # newest first, as OKX lists them
    )
)


def funding_rate_history(params: dict[str, str], listed: set[str]) -> RestAnswer:
    """GET /api/v5/public/funding-rate-history: one instrument's settled rates that match the
    query, newest first; `listed` the instruments the venue lists."""
    inst_id, limit = params.get("instId", ""), int(params.get("limit", str(_MAX_RATES)))
    if not inst_id:
        return RestAnswer.json({"code": "50014", "msg": "Parameter instId can not be empty.", "data": []})
    if inst_id not in listed:
        return RestAnswer.json({"code": "51001", "msg": "Instrument ID does not exist", "data": []})
    if not 1 <= limit <= _MAX_RATES:
        return RestAnswer.json({"code": "51000", "msg": "Parameter limit error", "data": []})
    newer, older = int(params.get("before", "-1")), int(params.get("after", str(2**63)))
    found = [
        rate
        for rate in FUNDING_RATES
        if rate["instId"] == inst_id and newer < int(rate["fundingTime"]) < older
    ]
    return RestAnswer.json({"code": "0", "msg": "", "data": found[:limit]})
