"""Strategies on history that holds bars and no trades (a venue's candles downloaded with
`trademesh data download`, a CSV imported with `trademesh data import`).

A `trade_bars` source builds its bars from the symbol's trades, as live. Where the backtest's
data holds no trade of that symbol in the range but holds bars of the source's timeframe, the
source would never see a bar: the run feeds it those closed bars instead, each at its close, as
a `bars` source takes the bar service's (trademesh.core.detector.modules.sources.BarsSource; the
`trade_bars` source itself warms from such bars). The choice is made here, when the run reads
its data, per symbol: the engine's sources stay as they are, and a run over recorded trades is
not changed by it (its strategies are the same objects, byte for byte).

`--bars 1m` (`bars = "1m"` in a run's config): every `trade_bars` and `bars` source of the
run's strategies on that timeframe, whatever their files say (the shipped strategies are on 1s
bars for the sim demo; a venue's downloaded history is 1m).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Collection, Sequence

from trademesh.core.detector.replay import ModuleDecl, Strategy
from trademesh.core.domain.model import Timeframe

__all__ = [
    "BAR_SOURCES",
    "bar_sources",
    "bars_only_of",
    "bookless_of",
    "fed_from_bars",
    "on_timeframe",
    "source_symbol",
]

BAR_SOURCES = ("trade_bars", "bars")


def on_timeframe(strategy: Strategy, label: str) -> Strategy:
    """The strategy with every `trade_bars` and `bars` source on the timeframe `label`."""
    Timeframe.from_label(label)  # a label the sources take
    modules = tuple(
        dataclasses.replace(decl, params={**decl.params, "timeframe": label})
        if decl.type in BAR_SOURCES
        else decl
        for decl in strategy.modules
    )
    return dataclasses.replace(strategy, modules=modules)


def source_symbol(decl: ModuleDecl, symbol: str) -> str:
    """The symbol a source of a patch on `symbol` reads: its own param, else the patch's."""
    return str(decl.params.get("symbol") or symbol)


def _timeframe(decl: ModuleDecl) -> Timeframe:
    return Timeframe.from_label(str(decl.params.get("timeframe") or "1m"))


def _ours(decl: ModuleDecl, venue: str) -> bool:
    return decl.type == "trade_bars" and str(decl.params.get("venue") or venue) == venue


def bar_sources(strategies: Sequence[Strategy], venue: str) -> set[tuple[str, Timeframe]]:
    """The (symbol, timeframe) of every `trade_bars` source of the strategies on `venue` (a
    screen-driven strategy's are left out: its symbols come and go)."""
    wanted: set[tuple[str, Timeframe]] = set()
    for strategy in strategies:
        if strategy.screen is not None:
            continue
        for symbol in strategy.symbols:
            for decl in strategy.modules:
                if _ours(decl, venue):
                    wanted.add((source_symbol(decl, symbol), _timeframe(decl)))
    return wanted


def fed_from_bars(
    strategies: Sequence[Strategy], venue: str, bars_only: Callable[[str, Timeframe], bool]
) -> tuple[list[Strategy], set[Timeframe]]:
    """The strategies with each `trade_bars` source for which `bars_only(symbol, timeframe)`
    (the data holds no trade of the symbol, and bars of the timeframe) made a `bars` source of
    the same venue, symbol and timeframe; and those timeframes (the run reads their bars). A
    strategy whose symbols part (some fed bars, some trades) is split by symbol, its patches'
    ids unchanged. Nothing fed from bars: the same strategies, and no timeframe."""
    out: list[Strategy] = []
    timeframes: set[Timeframe] = set()
    for strategy in strategies:
        if strategy.screen is not None or not any(_ours(d, venue) for d in strategy.modules):
            out.append(strategy)
            continue
        groups: dict[frozenset[str], list[str]] = {}
        for symbol in strategy.symbols:
            fed = frozenset(
                decl.id
                for decl in strategy.modules
                if _ours(decl, venue) and bars_only(source_symbol(decl, symbol), _timeframe(decl))
            )
            groups.setdefault(fed, []).append(symbol)
        for fed, symbols in groups.items():
            if not fed:
                out.append(dataclasses.replace(strategy, symbols=tuple(symbols)))
                continue
            modules = tuple(_as_bars(decl) if decl.id in fed else decl for decl in strategy.modules)
            timeframes.update(_timeframe(decl) for decl in strategy.modules if decl.id in fed)
            out.append(dataclasses.replace(strategy, symbols=tuple(symbols), modules=modules))
    if not timeframes:
        return list(strategies), set()
    return out, timeframes


def _as_bars(decl: ModuleDecl) -> ModuleDecl:
    params = {k: v for k, v in decl.params.items() if k != "lateness_ms"}
    return dataclasses.replace(decl, type="bars", params=params)


async def _any_row(
    database_url: str,
    venue: str,
    symbol: str,
    kind: str,
    timeframe: Timeframe | None,
    start_ns: int,
    end_ns: int,
) -> bool:
    """Whether the recorder holds a row of `kind` of the symbol in [start, end) (a book: its
    book as it stood at the start too; a bar: of `timeframe`, closing in the range)."""
    from trademesh.core.backtest.source import RecordedSource

    source = RecordedSource(
        database_url, venue, [symbol], start_ns, end_ns, kinds=(kind,),
        timeframes=() if timeframe is None else (timeframe,), chunk=1,
    )  # fmt: skip
    async with contextlib.aclosing(aiter(source)) as rows:
        async for _ in rows:
            return True
    return False


async def bars_only_of(
    database_url: str, venue: str, wanted: Collection[tuple[str, Timeframe]], start_ns: int, end_ns: int
) -> set[tuple[str, Timeframe]]:
    """Of `wanted`, the (symbol, timeframe) whose symbol has no recorded trade in [start, end)
    and bars of the timeframe closing in it (one row of each asked for, at most)."""
    found: set[tuple[str, Timeframe]] = set()
    traded: dict[str, bool] = {}
    for symbol, timeframe in sorted(wanted, key=lambda item: (item[0], item[1].value)):
        if symbol not in traded:
            traded[symbol] = await _any_row(database_url, venue, symbol, "trade", None, start_ns, end_ns)
        if not traded[symbol] and await _any_row(
            database_url, venue, symbol, "bar", timeframe, start_ns, end_ns
        ):
            found.add((symbol, timeframe))
    return found


async def bookless_of(
    database_url: str, venue: str, symbols: Sequence[str], timeframe: Timeframe, start_ns: int, end_ns: int
) -> list[str]:
    """Of `symbols`, those with no recorded book in [start, end) (nor one standing at the start)
    and bars of `timeframe` in it: their orders are filled on those bars."""
    found = []
    for symbol in symbols:
        if not await _any_row(database_url, venue, symbol, "book", None, start_ns, end_ns) and await _any_row(
            database_url, venue, symbol, "bar", timeframe, start_ns, end_ns
        ):
            found.append(symbol)
    return found
