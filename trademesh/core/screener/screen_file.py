"""Screens as TOML files (trademesh/core/screener/screens/*.toml): read here, parsed by the engine's
pure parse_screen (trademesh.core.screener.engine.definition)."""

from __future__ import annotations

from pathlib import Path

from trademesh.core.platform.config.file import read_text
from trademesh.core.screener.engine.definition import Screen, parse_screen

__all__ = ["SCREENS_DIR", "load_screen"]

# The example screens shipped with trademesh.
SCREENS_DIR = Path(__file__).resolve().parent / "screens"


def load_screen(path: Path) -> Screen:
    """The screen in the file at `path`; InvalidArgument naming the key (or `file`) and the file."""
    return parse_screen(read_text(path, "file"), str(path))
