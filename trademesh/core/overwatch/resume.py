"""The changes a new leader owes the bus (docs/overview.md, "Replicas").

A leader that starts (a first start, a restart, a standby taking over from a dead leader)
reads its markets' history as warm-up, and does not publish every change it replays there. But
the leader before it may have died between a bar and publishing the change it made, nobody may
have led while the bars came in, or a market may never have been published at all (its first
regime found in a warm-up). So once warm, the new leader compares each market's regime with the
last one published on regimes.<timeframe> and publishes the difference as one change (from
`unknown` for a market never published): a reader of the stream then finds every market's
regime on it, as of the leader's start at the latest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.convert import REGIME_TO_PB
from trademesh.core.overwatch.engine import BoardEntry, RegimeChange
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.reads import read_back
from trademesh.core.platform.bus.redis import BusRedis

__all__ = ["MAX_SCANNED", "last_published", "owed_changes"]

# How far back the last changes are looked for (entries of regimes.<timeframe>): changes are
# rare, and a market not among them is treated as never published.
MAX_SCANNED = 20_000
_PAGE = 500
_REGIME_FROM_PB = {pb: regime for regime, pb in REGIME_TO_PB.items()}


async def last_published(
    redis: BusRedis, stream: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], Regime]:
    """The newest regime published on `stream` of each wanted (venue, symbol)."""
    found: dict[tuple[str, str], Regime] = {}
    end, scanned = "+", 0
    while len(found) < len(wanted) and scanned < MAX_SCANNED:
        entries = await read_back(redis, stream, max=end, min="-", count=_PAGE)
        if not entries:
            break
        for _, fields in entries:
            for change in decode(fields).regimes.changes:
                key = (change.venue, change.symbol)
                if key in wanted and key not in found and change.regime in _REGIME_FROM_PB:
                    found[key] = _REGIME_FROM_PB[change.regime]
        scanned += len(entries)
        end = f"({_id(entries[-1][0])}"
    return found


def owed_changes(
    board: Iterable[BoardEntry], published: Mapping[tuple[str, str], Regime]
) -> list[RegimeChange]:
    """A change for each market whose regime is not the last one published of it (unknown when
    none was): a market still warming (unknown) is owed nothing."""
    owed = []
    for entry in board:
        last = published.get((entry.key.venue, entry.key.symbol), Regime.UNKNOWN)
        if last == entry.regime or entry.regime is Regime.UNKNOWN:
            continue
        owed.append(
            RegimeChange(
                entry.key,
                last,
                entry.regime,
                entry.since_ns,
                entry.last_bar_ns,
                entry.updated_ns,
                entry.features,
            )
        )
    return owed


def _id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
