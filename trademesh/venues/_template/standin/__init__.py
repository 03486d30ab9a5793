"""The template venue's replay stand-in: its wire formats and a small order store.

Loaded only for `trademesh venue template --replay` (trademesh.venues.replay.loader): the connector
never imports it. `create_adapter` is the one name the loader looks for.
"""

from __future__ import annotations

from trademesh.venues._template.standin.adapter import TemplateReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["TemplateReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return TemplateReplay(capture)
