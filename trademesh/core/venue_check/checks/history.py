"""MarketData GetTrades (paging a range of public trades) and GetTickers (every instrument's latest
ticker at once), each as Admin's capabilities say the venue serves it."""

from __future__ import annotations

import time

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail, skip
from trademesh.core.venue_check.shapes import positive, ticker_problems
from trademesh.core.venue_check.wire import answer, field_violations, refusal
from trademesh.marketdata.v1 import marketdata_pb2 as md

_UNKNOWN = "VENUECHECK/NOSUCH"
_MAX_LIMIT = 1000
# Pages read of the whole range at most (a busy range is judged on what they hold).
_PAGES = 30
# Pages of 2 compared with the whole range's first trades (until they hold this many trades; a
# page may hold fewer than its limit, none even, and go on).
_SMALL_PAGES = 10
_SMALL_TRADES = 6
_SHOWN = 3
_FALLBACK_NS = 10 * 60 * 1_000_000_000  # without trades seen: the last ten minutes


def _key(trade: md.HistoricalTrade) -> tuple[int, str]:
    return trade.ts_event_ns, trade.trade.trade_id


def _trade_problems(trades: list[md.HistoricalTrade], start_ns: int, end_ns: int) -> list[str]:
    found = []
    times = [t.ts_event_ns for t in trades]
    if times != sorted(times):
        found.append("trades not oldest first")
    keys = [_key(t) for t in trades]
    if len(set(keys)) != len(keys):
        found.append("a trade answered twice (same time and trade_id)")
    if any(not start_ns <= t < end_ns for t in times):
        found.append(f"a trade outside [{start_ns}, {end_ns})")
    for item in trades:
        found += positive("trade", price=item.trade.price, size=item.trade.size)
        if item.trade.taker_side not in (common.SIDE_BUY, common.SIDE_SELL):
            found.append(f"trade {item.trade.trade_id!r} has no taker side")
    return found


async def _pages(
    kit: Kit, start_ns: int, end_ns: int, limit: int, pages: int, enough: int | None = None
) -> tuple[list[md.HistoricalTrade], bool]:
    """Up to `pages` pages of the range through their tokens (until `enough` trades): the trades,
    and whether the range ended."""
    request = md.GetTradesRequest(symbol=kit.symbol, start_ns=start_ns, end_ns=end_ns, limit=limit)
    got: list[md.HistoricalTrade] = []
    for _ in range(pages):
        page = await answer(f"GetTrades of {kit.symbol}", kit.mesh.md.GetTrades(request))
        if len(page.trades) > (limit or _MAX_LIMIT):
            fail(f"GetTrades answered {len(page.trades)} trades for a limit of {limit or 'the default 1000'}")
        got += page.trades
        if not page.next_page_token:
            return got, True
        if enough is not None and len(got) >= enough:
            return got, False
        request = md.GetTradesRequest(symbol=kit.symbol, page_token=page.next_page_token, limit=limit)
    return got, False


@check(
    "trades.history",
    "GetTrades: bad requests refused naming their field; a range's trades oldest first, in it, each "
    "once; pages of 2 through next_page_token go on where the last ended",
    timeout_s=60.0,
)
async def trades_history(kit: Kit) -> str:
    if not kit.status.capabilities.trade_history:
        skip("GetStatus capabilities.trade_history is false: the venue serves no trade history")
    symbol, minute = kit.symbol, 60_000_000_000
    cases = [
        (md.GetTradesRequest(symbol=symbol, start_ns=2 * minute, end_ns=minute), ("start_ns", "end_ns"),
         "with end_ns before start_ns"),
        (md.GetTradesRequest(symbol=_UNKNOWN, start_ns=0, end_ns=minute), ("symbol",), f"of {_UNKNOWN}"),
        (md.GetTradesRequest(symbol=symbol, end_ns=minute, limit=_MAX_LIMIT + 1), ("limit",),
         f"with a limit of {_MAX_LIMIT + 1}"),
        (md.GetTradesRequest(symbol=symbol, page_token="not-a-page-token"), ("page_token",),
         "with a page_token it never gave"),
    ]  # fmt: skip
    for request, fields, what in cases:
        call = kit.mesh.md.GetTrades(request)
        error = await refusal(f"GetTrades {what}", call, grpc.StatusCode.INVALID_ARGUMENT)
        if not any(f in fields for f, _ in field_violations(error)):
            fail(f"GetTrades {what} was refused without a field violation on {' or '.join(fields)}")

    # The range of the trades the subscription read saw (the venue's history holds them), else
    # the last ten minutes.
    seen = [e.ts_event_ns for e in (await kit.observation()).of(md.CHANNEL_TRADES) if e.ts_event_ns > 0]
    if seen:
        start_ns, end_ns, where = min(seen), max(seen) + 1, "the trades the subscription saw"
    else:
        end_ns = time.time_ns()
        start_ns, where = end_ns - _FALLBACK_NS, "the last ten minutes"
    whole, ended = await _pages(kit, start_ns, end_ns, 0, _PAGES)
    problems = _trade_problems(whole, start_ns, end_ns)
    if problems:
        fail(f"GetTrades of {symbol} over {where}: " + "; ".join(problems[:_SHOWN]))
    small, _ = await _pages(kit, start_ns, end_ns, 2, _SMALL_PAGES, _SMALL_TRADES)
    paged, expected = [_key(t) for t in small], [_key(t) for t in whole[: len(small)]]
    if paged != expected:
        at = next(i for i, (a, b) in enumerate(zip(paged, [*expected, None], strict=False)) if a != b)
        fail(
            f"GetTrades of {symbol} in pages of 2 gave {paged[at]} as trade {at + 1}, where the whole "
            f"range has {expected[at] if at < len(expected) else 'no more'} (a trade repeated or skipped)"
        )
    held = f"{len(whole)} trades of {symbol} over {where}" + ("" if ended else f" (its first {_PAGES} pages)")
    if len(whole) < 2:
        return f"{held}: too few to page; bad requests refused, each naming its field"
    return f"{held}, in order, each once; pages of 2 follow on, nothing skipped or repeated"


@check(
    "tickers.all",
    "GetTickers: every listed instrument's ticker at most once, in ListInstruments' order, "
    "well formed; `symbols` answers those alone; an unknown one is INVALID_ARGUMENT on symbols[i]",
)
async def tickers_all(kit: Kit) -> str:
    if not kit.status.capabilities.all_tickers:
        skip("GetStatus capabilities.all_tickers is false: the venue serves no tickers at once")
    listed = [i.symbol for i in kit.instruments]
    every = await answer("GetTickers", kit.mesh.md.GetTickers(md.GetTickersRequest()))
    symbols = [t.symbol for t in every.tickers]
    problems = []
    if any(s not in listed for s in symbols):
        strays = [s for s in symbols if s not in listed][:_SHOWN]
        problems.append(f"a ticker of a symbol ListInstruments does not list ({strays})")
    elif symbols != sorted(set(symbols), key=listed.index):
        problems.append("tickers not in ListInstruments' order, each once")
    for item in every.tickers:
        problems += [f"{item.symbol}: {p}" for p in ticker_problems(item.ticker)]
        if not (item.ticker.best_bid or item.ticker.best_ask or item.ticker.last_price):
            problems.append(f"{item.symbol}: a ticker without a best bid, best ask or last price")
        if item.ts_event_ns < 0:
            problems.append(f"{item.symbol}: ts_event_ns {item.ts_event_ns} is negative")
    if problems:
        fail("GetTickers: " + "; ".join(problems[:_SHOWN]))
    one = await answer(
        f"GetTickers of {kit.symbol}", kit.mesh.md.GetTickers(md.GetTickersRequest(symbols=[kit.symbol]))
    )
    if any(t.symbol != kit.symbol for t in one.tickers) or len(one.tickers) > 1:
        fail(f"GetTickers of {kit.symbol} answered {[t.symbol for t in one.tickers]}")
    error = await refusal(
        f"GetTickers of {kit.symbol} and {_UNKNOWN}",
        kit.mesh.md.GetTickers(md.GetTickersRequest(symbols=[kit.symbol, _UNKNOWN])),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    if "symbols[1]" not in [f for f, _ in field_violations(error)]:
        fail(f"GetTickers of {kit.symbol} and {_UNKNOWN} was refused without a violation on symbols[1]")
    shown = f"{len(every.tickers)} of {len(listed)} instruments' tickers"
    return f"{shown}, in order and well formed; a filter and an unknown symbol answered right"
