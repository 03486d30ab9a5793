"""The strategy files the hub can run, by name: the shipped examples, and the files of its
strategy directory (a file there of the same name wins)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trademesh.core.detector.replay import Catalog, load_strategy
from trademesh.core.platform.errors import InvalidArgument, TrademeshError, shown

__all__ = ["EXAMPLES", "StrategyFile", "StrategyFiles"]

EXAMPLES = Path(__file__).resolve().parents[2] / "detector" / "strategies"


@dataclass(frozen=True)
class StrategyFile:
    name: str
    path: Path
    description: str
    symbols: tuple[str, ...]


class StrategyFiles:
    def __init__(self, extra: Path | None = None) -> None:
        self.directories = [EXAMPLES, *([extra] if extra is not None else [])]

    def all(self) -> list[StrategyFile]:
        found: dict[str, Path] = {}
        for directory in self.directories:
            for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
                found[path.stem] = path
        return [f for f in (self._read(name, path) for name, path in sorted(found.items())) if f is not None]

    def path(self, name: str, field: str) -> Path:
        return self.paths([name], field)[0]

    def paths(self, names: Sequence[str], field: str) -> list[Path]:
        """Each name's file, the files read once for all of them (each read parses every file:
        20 ms, once per name made a list of 1,000 names 25 s of the hub's loop)."""
        known = {f.name: f.path for f in self.all()}
        for name in names:
            if name not in known:
                listed = ", ".join(known)
                raise InvalidArgument.field(field, f"{shown(name)} is no strategy here; strategies: {listed}")
        return [known[name] for name in names]

    @staticmethod
    def _read(name: str, path: Path) -> StrategyFile | None:
        try:
            strategy = load_strategy(path, Catalog.builtin())
        except TrademeshError:
            return None  # a broken file is not offered
        return StrategyFile(name, path, strategy.description, tuple(strategy.symbols))
