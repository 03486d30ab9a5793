"""Route kinds: what the fan-out's index is keyed by, and how requests and bus events map to them.

A route is (venue, kind, symbol); a subscription is indexed under its routes with ANY for
an empty venue or symbol filter. Kinds are short strings:

    trades  book  tickers  notices      one each
    funding  mark  open_interest        one each: the derivatives channels (perpetuals, futures)
    liquidations
    candles.<tf>  bars.<tf>             one per timeframe (1s 1m 5m 15m 1h 4h 1d 1w)
    notice.<channel>                    a notice on the bus: reaches `notices` and the
                                        kind(s) of its channel (never indexed)
"""

from __future__ import annotations

from collections.abc import Iterable

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "ANY",
    "BAR_KINDS",
    "BOOK",
    "CANDLE_KINDS",
    "KIND_OF_PAYLOAD",
    "NOTICES",
    "TIMEFRAME_OF_TEXT",
    "TIMEFRAME_TEXT_OF_PB",
    "Key",
    "bars_kind",
    "candles_kind",
    "describe",
    "gap_channel",
    "is_notice",
    "notice_kind",
    "requested_kinds",
    "targets",
]

ANY = "*"
Key = tuple[str, str, str]  # (venue or ANY, kind, symbol or ANY)

TRADES, BOOK, TICKERS, NOTICES = "trades", "book", "tickers", "notices"
FUNDING, MARK, OPEN_INTEREST, LIQUIDATIONS = "funding", "mark", "open_interest", "liquidations"
TIMEFRAME_TEXT_OF_PB: dict[int, str] = {TIMEFRAME_TO_PB[tf]: tf.label for tf in Timeframe}
TIMEFRAME_OF_TEXT = {text: common.Timeframe.ValueType(pb) for pb, text in TIMEFRAME_TEXT_OF_PB.items()}


def candles_kind(timeframe_text: str) -> str:
    return f"candles.{timeframe_text}"


def bars_kind(timeframe_text: str) -> str:
    return f"bars.{timeframe_text}"


CANDLE_KINDS = tuple(candles_kind(text) for text in TIMEFRAME_TEXT_OF_PB.values())
BAR_KINDS = tuple(bars_kind(text) for text in TIMEFRAME_TEXT_OF_PB.values())

# MarketEvent payload -> kind (candles and notices are routed apart: they need more than the payload).
KIND_OF_PAYLOAD = {
    "trade": TRADES,
    "book_snapshot": BOOK,
    "book_delta": BOOK,
    "ticker": TICKERS,
    "funding_rate": FUNDING,
    "mark_price": MARK,
    "open_interest": OPEN_INTEREST,
    "liquidation": LIQUIDATIONS,
}

_CHANNEL_KINDS: dict[md.Channel.ValueType, tuple[str, ...]] = {
    md.CHANNEL_TRADES: (TRADES,),
    md.CHANNEL_BOOK: (BOOK,),
    md.CHANNEL_TICKERS: (TICKERS,),
    md.CHANNEL_CANDLES: CANDLE_KINDS,
    md.CHANNEL_FUNDING: (FUNDING,),
    md.CHANNEL_MARK: (MARK,),
    md.CHANNEL_OPEN_INTEREST: (OPEN_INTEREST,),
    md.CHANNEL_LIQUIDATIONS: (LIQUIDATIONS,),
}
_DERIVATIVES = (FUNDING, MARK, OPEN_INTEREST, LIQUIDATIONS)
_ALL_MARKET = (TRADES, BOOK, TICKERS, *CANDLE_KINDS, *_DERIVATIVES)
_NOTICE_KINDS: dict[int, str] = {
    channel: "notice." + name.removeprefix("CHANNEL_").lower() for name, channel in md.Channel.items()
}
# A notice for an unknown or unspecified channel concerns every market kind of its symbol.
_NOTICE_ANY = _NOTICE_KINDS[md.CHANNEL_UNSPECIFIED]
_TARGETS: dict[str, tuple[str, ...]] = {
    _NOTICE_KINDS[channel]: (NOTICES, *_CHANNEL_KINDS.get(channel, _ALL_MARKET))
    for channel in md.Channel.values()
}


def notice_kind(channel: int) -> str:
    return _NOTICE_KINDS.get(channel, _NOTICE_ANY)


def is_notice(kind: str) -> bool:
    return kind.startswith("notice.")


def targets(kind: str) -> tuple[str, ...]:
    """The indexed kinds an event of `kind` reaches."""
    return _TARGETS.get(kind, (kind,))


_SIMPLE_KINDS: dict[int, str] = {
    lv.KIND_TRADES: TRADES,
    lv.KIND_BOOK: BOOK,
    lv.KIND_TICKERS: TICKERS,
    lv.KIND_NOTICES: NOTICES,
    lv.KIND_FUNDING: FUNDING,
    lv.KIND_MARK: MARK,
    lv.KIND_OPEN_INTEREST: OPEN_INTEREST,
    lv.KIND_LIQUIDATIONS: LIQUIDATIONS,
}
_KIND_OF_SIMPLE = {text: lv.Kind.ValueType(kind) for kind, text in _SIMPLE_KINDS.items()}


def requested_kinds(kinds: Iterable[int], timeframes: Iterable[int]) -> frozenset[str]:
    """The indexed kinds of a (validated) request's kinds and timeframes."""
    texts = [TIMEFRAME_TEXT_OF_PB[tf] for tf in timeframes] or list(TIMEFRAME_TEXT_OF_PB.values())
    found: set[str] = set()
    for kind in kinds:
        if kind == lv.KIND_CANDLES:
            found.update(candles_kind(text) for text in texts)
        elif kind == lv.KIND_BARS:
            found.update(bars_kind(text) for text in texts)
        else:
            found.add(_SIMPLE_KINDS[kind])
    return frozenset(found)


def describe(kind: str) -> tuple[lv.Kind.ValueType, common.Timeframe.ValueType]:
    """A route kind as the API names it: (Kind, timeframe)."""
    family, _, text = kind.partition(".")
    if family == "notice":
        return lv.KIND_NOTICES, common.TIMEFRAME_UNSPECIFIED
    timeframe = TIMEFRAME_OF_TEXT.get(text, common.TIMEFRAME_UNSPECIFIED)
    if family == "candles":
        return lv.KIND_CANDLES, timeframe
    if family == "bars":
        return lv.KIND_BARS, timeframe
    return _KIND_OF_SIMPLE[kind], common.TIMEFRAME_UNSPECIFIED


_CHANNEL_OF_KIND: dict[str, md.Channel.ValueType] = {
    kinds[0]: channel for channel, kinds in _CHANNEL_KINDS.items() if len(kinds) == 1
}


def gap_channel(kind: str) -> tuple[md.Channel.ValueType, str]:
    """The channel a GAP notice for a route of `kind` names, and what to say it is about."""
    family, _, text = kind.partition(".")
    channel = _CHANNEL_OF_KIND.get(kind)
    if channel is not None:
        return channel, kind
    if family == "candles":
        return md.CHANNEL_CANDLES, f"candles {text}"
    if family == "bars":
        return md.CHANNEL_UNSPECIFIED, f"bars {text}"
    return md.CHANNEL_UNSPECIFIED, "notices"
