"""`--paper`: any venue's real market data (or its `--replay` session), with orders matched by
the sim's engine against that venue's book and trades, from an account of a config: trading
without keys. Generic: it wraps whatever venue the registry makes (docs/paper.md)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.platform.config.env import VENUE_CREDENTIALS, venue_variable
from trademesh.venues.paper.config import PaperConfig, load_paper_config
from trademesh.venues.paper.venue import PaperVenue

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions

__all__ = ["PaperConfig", "PaperVenue", "create_paper_venue", "ignore_credentials"]

log = logging.getLogger(__name__)


def ignore_credentials(name: str) -> list[str]:
    """Unset the venue's credential variables in this process (a paper venue must never reach the
    account): the names of those that were set, said once in the log (never their values)."""
    found = [venue_variable(name, field) for field in VENUE_CREDENTIALS]
    found = [variable for variable in found if os.environ.pop(variable, "") != ""]
    if found:
        log.warning(
            "paper venue %s ignores its credentials (%s): it sends no order to the exchange",
            name,
            ", ".join(found),
        )
    return found


def create_paper_venue(
    name: str,
    config_path: Path | None,
    replay: ReplayOptions | None,
    paper_config: Path | None,
    symbols: Sequence[str] | None = None,
) -> PaperVenue:
    """The venue `name` (its config, replay and `--symbols`) wrapped for paper trading."""
    from trademesh.venues.registry import create_venue

    config = load_paper_config(paper_config)
    ignore_credentials(name)
    return PaperVenue(create_venue(name, config_path, replay, symbols=symbols), config)
