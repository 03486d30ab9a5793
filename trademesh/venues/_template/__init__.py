"""_template: the skeleton a new live venue copies (docs/venue-adding.md, "Adding a venue").

Copy the folder to trademesh/venues/<name>/ (a Python name: okx-swap lives in okx_swap), replace
"template"/"Template" everywhere, fill in spec.py, write the stand-in, and delete the optional
files ccxt makes unnecessary (exchange.py, sequence.py, standin/order_store.py,
standin/history.py) with their lines in spec.py. This folder is not in trademesh/venues/registry.py: it
is imported and type-checked by the tests, never run.

This module is what the registry imports: `create_venue` and the spec, nothing that replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.venues._template.spec import SPEC
from trademesh.venues.live.accounts import account_spec
from trademesh.venues.live.config import load_config
from trademesh.venues.live.venue import LiveVenue

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions

__all__ = ["SPEC", "create_venue"]


def create_venue(
    config_path: Path | None,
    replay: ReplayOptions | None = None,
    account: str | None = None,
    symbols: Sequence[str] | None = None,
) -> LiveVenue:
    """The venue (an `account`'s: docs/accounts.md), live or (with `replay`) against its
    stand-in, which only then is imported. `symbols` (`--symbols`) replace its config's."""
    return LiveVenue(account_spec(SPEC, account), load_config(SPEC, config_path, symbols), replay)
