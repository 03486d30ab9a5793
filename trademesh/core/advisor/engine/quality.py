"""Stage 2, the market-quality gate: a score in [0, 1] from staleness (the last event's age),
gaps (open gap markers, repaired bars in the window), book health (crossed, thin, wide) and the
venue's reconnects and resyncs. The score starts at 1 and each finding takes its penalty off
(QualityConfig); below the threshold the signal is blocked with every finding as a reason."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.advisor.engine.config import QualityConfig
from trademesh.core.advisor.engine.context import BookTop
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Instrument

__all__ = ["Penalty", "QualityGate", "assess_quality"]

_NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Penalty:
    check: str  # staleness, open_gaps, repaired_bars, no_book, crossed, thin, wide, venue
    amount: float
    reason: str


@dataclass(frozen=True)
class QualityGate:
    score: float
    threshold: float
    penalties: tuple[Penalty, ...]

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(p.reason for p in self.penalties)


def _staleness(age_ns: int | None, cfg: QualityConfig) -> list[Penalty]:
    if age_ns is None:
        return [Penalty("staleness", cfg.staleness_penalty, "no market event seen")]
    age_ms = age_ns // _NS_PER_MS
    if age_ms <= cfg.fresh_ms:
        return []
    share = min(1.0, (age_ms - cfg.fresh_ms) / (cfg.stale_ms - cfg.fresh_ms))
    reason = f"stale: last event {age_ms} ms ago (fresh up to {cfg.fresh_ms} ms)"
    return [Penalty("staleness", cfg.staleness_penalty * share, reason)]


def _gaps(snap: ContextSnapshot, cfg: QualityConfig) -> list[Penalty]:
    found = []
    gaps = snap.context.gaps
    open_gaps = [g for g in gaps if not g.repaired]
    if open_gaps:
        amount = min(1.0, cfg.open_gap_penalty * len(open_gaps))
        missing = sum(g.bars for g in open_gaps)
        found.append(Penalty("open_gaps", amount, f"{len(open_gaps)} open gap(s), {missing} bar(s) missing"))
    repaired = sum(g.bars for g in gaps if g.repaired)
    if repaired:
        amount = min(cfg.repaired_penalty_cap, cfg.repaired_bar_penalty * repaired)
        found.append(Penalty("repaired_bars", amount, f"{repaired} repaired bar(s) in the window"))
    return found


def _level_worth(price: Decimal, size: Decimal, instrument: Instrument | None) -> Decimal:
    """A book level's worth in the quote asset: its size in the instrument's units (contracts of
    an inverse contract's face value: Deribit's 1 USD, OKX's 100 USD; of a linear contract's
    value in the base) at its price; price x size when the facts are not known."""
    return price * size if instrument is None else instrument.notional(size, price)


def _book(book: BookTop | None, cfg: QualityConfig, instrument: Instrument | None) -> list[Penalty]:
    if book is None:
        return [Penalty("no_book", cfg.no_book_penalty, "no order book")]
    if book.crossed:
        reason = f"crossed book: bid {format_decimal(book.bid)} >= ask {format_decimal(book.ask)}"
        return [Penalty("crossed", cfg.crossed_penalty, reason)]
    found = []
    thinnest = min(
        _level_worth(book.bid, book.bid_size, instrument), _level_worth(book.ask, book.ask_size, instrument)
    )
    if thinnest < cfg.thin_book_quote:
        reason = (
            f"thin book: best level worth {format_decimal(thinnest)} < {format_decimal(cfg.thin_book_quote)}"
        )
        found.append(Penalty("thin", cfg.thin_penalty, reason))
    if book.spread_ratio > cfg.wide_spread_ratio:
        reason = f"wide spread: {_percent(book.spread_ratio)} > {_percent(cfg.wide_spread_ratio)}"
        found.append(Penalty("wide", cfg.wide_penalty, reason))
    return found


def _venue(reconnects: int, resyncs: int, cfg: QualityConfig) -> list[Penalty]:
    events = reconnects + resyncs
    if events == 0:
        return []
    amount = min(cfg.venue_penalty_cap, cfg.reconnect_penalty * events)
    return [Penalty("venue", amount, f"venue unsteady: {reconnects} reconnect(s), {resyncs} resync(s)")]


def _percent(ratio: object) -> str:
    return f"{float(str(ratio)) * 100:.3f}%"


def assess_quality(snap: ContextSnapshot, cfg: QualityConfig) -> QualityGate:
    context = snap.context
    penalties = [
        *_staleness(snap.last_event_age_ns, cfg),
        *_gaps(snap, cfg),
        *_book(context.book, cfg, context.instrument),
        *_venue(context.reconnects, context.resyncs, cfg),
    ]
    score = max(0.0, 1.0 - sum(p.amount for p in penalties))
    return QualityGate(round(score, 6), cfg.threshold, tuple(penalties))
