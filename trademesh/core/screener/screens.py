"""The screens of a directory: every `*.toml` in it, each a screen (trademesh.core.screener.screen_file)."""

from __future__ import annotations

from pathlib import Path

from trademesh.core.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.screen_file import load_screen

__all__ = ["load_screens"]


def load_screens(directory: Path) -> dict[str, Screen]:
    """name -> screen of every file in `directory`. A bad file is its InvalidArgument; two files
    of one name InvalidArgument naming both; a directory with none FailedPrecondition."""
    if not directory.is_dir():
        raise InvalidArgument.field("screens", f"{str(directory)!r} is not a directory")
    screens: dict[str, Screen] = {}
    for path in sorted(directory.glob("*.toml")):
        screen = load_screen(path)
        before = screens.get(screen.name)
        if before is not None:
            text = f"screen {screen.name!r} is in both {before.source} and {screen.source}"
            raise InvalidArgument([FieldViolation("name", text)])
        screens[screen.name] = screen
    if not screens:
        raise FailedPrecondition(f"no screens (*.toml) in {directory}")
    return screens
