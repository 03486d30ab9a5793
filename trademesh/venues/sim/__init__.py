"""The `sim` venue: a built-in exchange with a seeded synthetic market and a real matching engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.domain.accounts import account_venue
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.sim.config import load_config
from trademesh.venues.sim.symbols import VENUE
from trademesh.venues.sim.venue import SimVenue

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions

__all__ = ["SimVenue", "create_venue"]


def create_venue(
    config_path: Path | None,
    replay: ReplayOptions | None = None,
    account: str | None = None,
    symbols: Sequence[str] | None = None,
) -> SimVenue:
    """The sim, or one `account` of it (docs/accounts.md: its own balances, from its config);
    with `symbols` (`--symbols`), only those of its config's markets."""
    if replay is not None:
        raise InvalidArgument.field("replay", "the sim venue makes its own market: it has nothing to replay")
    return SimVenue(load_config(config_path, symbols), account_venue(VENUE, account))
