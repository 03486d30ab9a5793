"""The sim's listing control, for tests and demos of a venue's instrument changes (docs/bus.md,
"Instruments"): a JSON file named by TRADEMESH_SIM_LISTING that the sim reads whenever its
instrument list is asked for (its mtime changed), e.g.

    {"delisted": ["ETH/USDT"], "rules": {"BTC/USDT": {"tick_size": "0.1", "active": false}}}

`delisted`: symbols the sim lists no more (MarketData.ListInstruments leaves them out, and the
venue refuses their orders as of unknown symbols); `rules`: trading rules changed (tick_size,
lot_size, min_size, min_notional as decimal strings; active). A symbol back out of `delisted` is
listed again. Sim-only: a live venue's list is the exchange's. No file, or none set: the config's
list as it is. A file that cannot be read or parsed keeps the last good one (said once)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.domain.model import Instrument

__all__ = ["LISTING_ENV", "Listing"]

log = logging.getLogger(__name__)

LISTING_ENV = "TRADEMESH_SIM_LISTING"
_DECIMALS = ("tick_size", "lot_size", "min_size", "min_notional")


class Listing:
    def __init__(self, path: str | None = None) -> None:
        named = path if path is not None else os.environ.get(LISTING_ENV, "")
        self.path = Path(named) if named else None
        self._mtime_ns: int | None = None
        self.delisted: frozenset[str] = frozenset()
        self.rules: dict[str, dict[str, Any]] = {}

    def apply(self, instruments: Sequence[Instrument]) -> list[Instrument]:
        """The config's instruments as the listing file has them now."""
        self._reload()
        listed = []
        for item in instruments:
            if item.symbol in self.delisted:
                continue
            rules = self.rules.get(item.symbol)
            listed.append(item if not rules else dataclasses.replace(item, **rules))
        return listed

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime == self._mtime_ns:
            return
        self._mtime_ns = mtime
        if mtime == 0:
            self.delisted, self.rules = frozenset(), {}
            return
        try:
            data = json.loads(self.path.read_text())
            delisted = frozenset(str(s) for s in data.get("delisted", []))
            rules = {
                str(symbol): {
                    key: (Decimal(str(value)) if key in _DECIMALS else bool(value))
                    for key, value in changed.items()
                    if key in _DECIMALS or key == "active"
                }
                for symbol, changed in data.get("rules", {}).items()
            }
        except (OSError, ValueError, AttributeError, ArithmeticError) as exc:
            log.warning("sim: listing file %s not read (%s): the last one kept", self.path, exc)
            return
        self.delisted, self.rules = delisted, rules
        log.info(
            "sim: listing file %s: %d delisted, %d with changed rules", self.path, len(delisted), len(rules)
        )
