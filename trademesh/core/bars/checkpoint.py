"""The engine's state in Redis, committed with its effects in one MULTI/EXEC.

One hash per venue stream, `bars:<group>:checkpoint:md.{<venue>}.trades` (in the stream's slot):
field `_meta` holds the last applied entry and the venue's latest event time; one field per
symbol holds its open bars (with the trade ids of the open 1s bars), its watermark and its
repair spans, as compact JSON. Only the symbols a batch changed are rewritten.

A commit XADDs the newly closed bars to bars.{<venue>}.<timeframe>, writes the checkpoint and XACKs the
consumed entries in one group write (trademesh.core.platform.bus.group), every key of it (the stream's
lease too, below) in the trade stream's slot (trademesh.core.platform.bus.names: a Redis Cluster needs
one slot for one write): after a crash either all of it happened or none did, and the entries not
acknowledged are exactly those the checkpoint has not seen. It has no guard: a commit whose answer was
lost is not retried, the engine is reloaded from the checkpoint instead (trademesh.core.bars.aggregator),
which says what was applied. It is fenced by the stream's lease (trademesh.core.bars.fleet): a replica
that lost the stream commits nothing more for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars.engine import SymbolBars, VenueBars, entry_position
from trademesh.core.bars.spans import Span
from trademesh.core.bars.timeframes import HIGHER
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.bar import Bar, SecondBar
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.codec import encode_bars
from trademesh.core.platform.bus.group import Ack, Fenced, GroupOutcome, GroupWrite, SetFields, write_group
from trademesh.core.platform.bus.names import bars_stream, slot_tag
from trademesh.core.platform.bus.reads import read_hash
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt, Unavailable

__all__ = ["CheckpointStore", "StreamLost", "dump_symbol", "load_symbol"]

_META = b"_meta"
# Bars per bus entry: a catch-up closes many at once; entries stay small.
_BARS_PER_ENTRY = 1000


class StreamLost(Unavailable):
    """The stream's lease is held by another replica now (or this one holds it no more): its
    commit was fenced, nothing was written."""


def _per_entry(bars: list[bus.Bar]) -> list[list[bus.Bar]]:
    return [bars[start : start + _BARS_PER_ENTRY] for start in range(0, len(bars), _BARS_PER_ENTRY)]


def _bar_fields(bar: Bar) -> list[Any]:
    return [bar.open_time_ns, bar.first[0], bar.first[2], bar.last[0], bar.last[2], str(bar.open),
            str(bar.high), str(bar.low), str(bar.close), str(bar.volume), str(bar.quote_volume),
            bar.trade_count]  # fmt: skip


def _bar_args(raw: list[Any]) -> tuple[Any, ...]:
    (open_time, first_ts, first_id, last_ts, last_id, o, h, lo, c, volume, quote, count) = raw[:12]
    first, last = (first_ts, len(first_id), first_id), (last_ts, len(last_id), last_id)
    decimals = (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(volume), Decimal(quote))
    return (open_time, first, last, *decimals, count)


def _second(raw: list[Any]) -> SecondBar:
    bar = SecondBar(*_bar_args(raw))
    bar.ids = set(raw[12])
    return bar


def dump_symbol(sym: SymbolBars) -> bytes:
    """A symbol's state as compact JSON (orjson: an open second's trade ids are most of it, and
    every commit that changes the symbol writes them again)."""
    return orjson.dumps(
        {
            "max": sym.max_ts_ns,
            "seconds": [[*_bar_fields(bar), list(bar.ids)] for bar in sym.seconds.values()],
            "partials": [None if bar is None else _bar_fields(bar) for bar in sym.partials],
            "spans": [[s.start_ns, s.end_ns, s.open_end, s.done] for s in sym.spans],
            # Apart from "spans" (a reader of before it ignores it): which bars of each were repaired.
            "repaired": [s.repaired for s in sym.spans],
        }
    )


def load_symbol(text: str | bytes) -> SymbolBars:
    raw = orjson.loads(text)
    seconds = [_second(item) for item in raw["seconds"]]
    partials = [None if item is None else Bar(*_bar_args(item)) for item in raw["partials"]]
    # A checkpoint written before a timeframe was added (1w) has no open bar for it.
    partials += [None] * (len(HIGHER) - len(partials))
    spans = [Span(start, end, open_end, done) for start, end, open_end, done in raw["spans"]]
    # A checkpoint written before the bars' repairs were counted per bar has none: nothing repaired
    # besides the timeframes done.
    for span, repaired in zip(spans, raw.get("repaired", ()), strict=False):
        span.repaired[: len(repaired)] = repaired[: len(span.repaired)]
    return SymbolBars(
        max_ts_ns=raw["max"],
        seconds={bar.open_time_ns: bar for bar in seconds},
        partials=partials,
        spans=spans,
        dirty=False,
    )


class CheckpointStore:
    def __init__(self, redis: BusRedis, group: str, source: str, retention: Retention) -> None:
        if "{" in group:  # it would be the key's hash tag, not the stream's
            raise ValueError(f"a bars group named with a brace ({group!r}) cannot name a checkpoint")
        self.redis = redis  # redis.asyncio.Redis
        self.group = group
        self.source = source
        self.retention = retention

    def key(self, stream: str) -> str:
        """The checkpoint of `stream`, in its slot: by the stream's own hash tag (a venue's), or
        by its whole name in braces when it has none."""
        return f"bars:{self.group}:checkpoint:{stream if slot_tag(stream) != stream else '{' + stream + '}'}"

    async def load(self, stream: str, venue: str, rules: WatermarkRules) -> VenueBars | None:
        """The engine as last committed; None when the stream has no checkpoint."""
        fields: dict[bytes, bytes] = await read_hash(self.redis, self.key(stream))
        if _META not in fields:
            return None
        engine = VenueBars(venue, rules)
        try:
            meta = orjson.loads(fields.pop(_META))
            engine.position = entry_position(meta["position"])
            engine.max_ts_ns = meta["max"]
            engine.symbols = {name.decode(): load_symbol(text) for name, text in fields.items()}
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise Corrupt(f"bars checkpoint {self.key(stream)} cannot be read: {exc}") from exc
        engine.restore_seams()
        return engine

    async def discard(self, stream: str) -> None:
        """Forget the stream's checkpoint (one that cannot be read)."""
        await self.redis.delete(self.key(stream))

    async def commit(
        self,
        stream: str,
        engine: VenueBars,
        bars: Mapping[Timeframe, list[bus.Bar]],
        ack_ids: Sequence[str] = (),
        fence: Fenced | None = None,
    ) -> None:
        """Publish `bars`, write the engine's changed state and acknowledge `ack_ids`, atomically;
        with a `fence`, only while its lease holds its token (StreamLost otherwise: nothing written)."""
        meta = orjson.dumps({"position": "{}-{}".format(*engine.position), "max": engine.max_ts_ns})
        state: dict[str | bytes, bytes] = {_META: meta}
        state.update({name: dump_symbol(sym) for name, sym in engine.dirty().items()})
        appends = [
            Append(bars_stream(timeframe, stream), encode_bars(self.source, chunk), self.retention.maxlen)
            for timeframe, items in bars.items()
            for chunk in _per_entry(items)
        ]
        ack = Ack(stream, self.group, tuple(ack_ids)) if ack_ids else None
        group = GroupWrite(appends, [SetFields(self.key(stream), state)], ack, fence=fence)
        result = await write_group(self.redis, group)
        if result.outcome is GroupOutcome.FENCED:
            raise StreamLost(f"{stream}: another bars replica holds its lease; commit refused")
        engine.mark_clean()
