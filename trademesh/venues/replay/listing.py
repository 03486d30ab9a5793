"""A stand-in's listing control, for tests of a live venue's markets reload (docs/venues.md, "Markets
reloaded"): a JSON file named by TRADEMESH_REPLAY_LISTING that the stand-in reads whenever it
answers its exchange's market list (when its mtime changed), e.g.

    {"delisted": ["NKNUSDT"], "rules": {"LRCBTC": {"tick_size": "0.0000001", "active": false}}}

in the exchange's own symbols: `delisted`, markets the list leaves out from then on; `rules`,
trading rules changed (tick_size, lot_size, min_size, min_notional as decimal strings; active),
written in the exchange's format by the stand-in that serves the list (Binance's exchangeInfo:
trademesh.venues.binance.standin.adapter). A symbol back out of `delisted` is listed again. No file, or none
named: the list as recorded (or made up). A file that cannot be read or parsed keeps the last good
one (said once). The sim's counterpart is trademesh/venues/sim/listing.py."""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

__all__ = ["LISTING_ENV", "RULES", "ReplayListing"]

log = logging.getLogger(__name__)

LISTING_ENV = "TRADEMESH_REPLAY_LISTING"
# The rules a listing file may change, and active.
RULES = ("tick_size", "lot_size", "min_size", "min_notional")


class ReplayListing:
    def __init__(self, path: str | None = None) -> None:
        named = path if path is not None else os.environ.get(LISTING_ENV, "")
        self.path = Path(named) if named else None
        self._mtime_ns: int | None = None
        self.delisted: frozenset[str] = frozenset()
        # native symbol -> {rule: decimal string, "active": bool}
        self.rules: dict[str, dict[str, str | bool]] = {}

    def read(self) -> ReplayListing:
        """The file as it is now (read again only when it changed)."""
        if self.path is None:
            return self
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime == self._mtime_ns:
            return self
        self._mtime_ns = mtime
        if mtime == 0:
            self.delisted, self.rules = frozenset(), {}
            return self
        try:
            data = json.loads(self.path.read_text())
            delisted = frozenset(str(s) for s in data.get("delisted", []))
            rules: dict[str, dict[str, str | bool]] = {}
            for symbol, changed in data.get("rules", {}).items():
                rules[str(symbol)] = {
                    key: bool(value) if key == "active" else format(Decimal(str(value)), "f")
                    for key, value in changed.items()
                    if key in RULES or key == "active"
                }
        except (OSError, ValueError, AttributeError, InvalidOperation) as exc:
            log.warning("replay: listing file %s not read (%s): the last one kept", self.path, exc)
            return self
        log.info(
            "replay: listing file %s: %d delisted, %d with changed rules",
            self.path,
            len(delisted),
            len(rules),
        )
        self.delisted, self.rules = delisted, rules
        return self
