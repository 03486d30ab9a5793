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

The account's payments are fixed: three funding times (00:00, 08:00 and 16:00 UTC of
2025-02-19, the day the capture was recorded, all before it) on BTC-USDT-SWAP (streamed by
the capture) and ETH-USDT-SWAP (listed by its instruments, not streamed), settled in USDT.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venues.replay.adapter import RestAnswer

__all__ = ["BILLS", "bills"]

_MAX_LIMIT = 100
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
