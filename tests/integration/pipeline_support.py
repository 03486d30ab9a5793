"""Checks of the durable path's results, shared by the pipeline tests (no tests here): the 1s
bars a correct aggregator makes from the recorded trades (a group-by in SQL), the bars recorded,
and whether every consumer group has drained the bus."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from tests.integration.support import metric_samples, metrics_page
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.service.process import ServiceProcess

__all__ = ["BARS_1S", "GROUP_BY_1S", "assert_bars_match_the_trades", "caught_up", "drained", "trade_count"]

# The 1s bars a correct aggregator makes from the recorded trades: open/close by (event time,
# trade id), as docs/bars.md defines them.
GROUP_BY_1S = """
SELECT symbol, (ts_event_ns / 1000000000) * 1000000000 AS open_time_ns,
       (array_agg(price ORDER BY ts_event_ns, trade_id::bigint))[1] AS open,
       max(price) AS high, min(price) AS low,
       (array_agg(price ORDER BY ts_event_ns DESC, trade_id::bigint DESC))[1] AS close,
       sum(size) AS volume, sum(price * size) AS quote_volume, count(*) AS trade_count
FROM trades GROUP BY 1, 2
"""
BARS_1S = """
SELECT symbol, open_time_ns, open, high, low, close, volume, quote_volume, trade_count, repaired
FROM bars WHERE timeframe = '1s'
"""


async def assert_bars_match_the_trades(db: asyncpg.Connection, symbols: Iterable[str]) -> int:
    """Every live 1s bar recorded equals the group-by of the recorded trades, and no second with
    trades is missing between a symbol's first and last live bar; the live bars' count."""
    expected = {(r["symbol"], r["open_time_ns"]): r for r in await db.fetch(GROUP_BY_1S)}
    bars = {(r["symbol"], r["open_time_ns"]): r for r in await db.fetch(BARS_1S)}
    live = {key: bar for key, bar in bars.items() if not bar["repaired"]}
    assert len(live) > 10, f"only {len(live)} live 1s bars"
    for key, bar in live.items():
        want = expected[key]
        for field in ("open", "high", "low", "close", "volume", "quote_volume", "trade_count"):
            assert bar[field] == want[field], f"{key} {field}: bar {bar[field]} != trades {want[field]}"
    for symbol in symbols:
        mine = sorted(t for s, t in live if s == symbol)
        assert mine, f"{symbol}: no live 1s bar"
        seconds = {t for s, t in expected if s == symbol and mine[0] <= t <= mine[-1]}
        assert seconds <= {t for s, t in bars if s == symbol}, f"{symbol}: 1s bars missing"
    return len(live)


async def drained(url: str, *bars: ServiceProcess) -> bool | None:
    """For `until`, once ingest has stopped: nothing more will be written. In this order: every
    consumer group on ingest's streams has read and acknowledged all of them (they acknowledge
    what is durable: bars with the bars it publishes), no bars process owes a repair (those its
    reading made due are done, their bars published), then every group on every stream (the
    recorder's on bars') has too."""
    client: Any = open_redis(url)
    try:
        if not await caught_up(client, "md.*"):
            return None
        for process in bars:
            page = await metrics_page(int(process.info["metrics_port"]))
            if any(metric_samples(page, "trademesh_bars_repairs_pending").values()):
                return None
        return True if await caught_up(client, "*") else None
    finally:
        await client.aclose()


async def caught_up(client: Any, pattern: str, group: str | None = None) -> bool:
    """Every consumer group (or `group`, which must be on each of them: a consumer just started
    has not made it yet) on the streams of `pattern` has read and acknowledged every entry."""
    async for stream in client.scan_iter(match=pattern, _type="STREAM"):
        last = (await client.xinfo_stream(stream))["last-generated-id"]
        infos = await client.xinfo_groups(stream)
        if group is not None and group not in {_text(info["name"]) for info in infos}:
            return False
        for info in infos:
            if group is not None and _text(info["name"]) != group:
                continue
            if info["pending"] or info["last-delivered-id"] != last:
                return False
    return True


async def trade_count(db: asyncpg.Connection, at_least: int) -> int | None:
    """The trades recorded, once at least `at_least` (None before: for `until`)."""
    try:
        count = int(await db.fetchval("SELECT count(*) FROM trades"))
    except asyncpg.UndefinedTableError:
        return None
    return count if count >= at_least else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
