"""The `sim` venue: a built-in exchange with a seeded synthetic market and a real matching engine."""

from __future__ import annotations

from pathlib import Path

from venues.sim.config import load_config
from venues.sim.venue import SimVenue

__all__ = ["SimVenue", "create_venue"]


def create_venue(config_path: Path | None) -> SimVenue:
    return SimVenue(load_config(config_path))
