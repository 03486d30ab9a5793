"""Strategies as TOML files: the modules (id, type, params), the cables ("a.out -> b.in"), the
venues and symbols it runs on, its threshold and its warm-up.

    id = "trend"
    description = "..."
    venues = ["sim"]
    symbols = ["BTC/USDT"]
    threshold = 2.0          # optional: the `threshold` of every weighted_score not setting it
    warmup = 60              # optional: values of history its bar and trade sources need at least
    cables = ["bars.bar -> fields.bar", ...]
    custom_modules = ["my_modules:Spread"]   # optional: your own module classes (next to the file)

    [[modules]]
    id = "bars"
    type = "trade_bars"
    params = { timeframe = "1m" }

A strategy runs as one patch per (venue, symbol); sources and sinks left without a venue or
symbol take the patch's. A bad file is refused with an InvalidArgument whose field is the key
(`modules.fast.params.period`, `cables[2]`) and whose text names the file and what is wrong;
unknown keys are refused too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.detector.engine.catalog import Catalog
from core.detector.engine.engine import Engine
from core.detector.engine.graph import MAX_CABLES, MAX_MODULES
from core.detector.engine.patch import Patch
from core.foundations.config_file import parse_toml, read_text
from core.foundations.errors import FieldViolation, InvalidArgument, TrademeshError, shown
from core.foundations.text import unstorable_values

__all__ = [
    "ModuleDecl",
    "Strategy",
    "build_patches",
    "install",
    "load_strategy",
    "parse_strategy",
    "patch_id",
]

_TOP = {
    "id",
    "description",
    "venues",
    "symbols",
    "threshold",
    "warmup",
    "cables",
    "modules",
    "custom_modules",
}
_MODULE = {"id", "type", "params"}
_STRATEGY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_SCORE_TYPE = "weighted_score"


@dataclass(frozen=True)
class ModuleDecl:
    id: str
    type: str
    params: Mapping[str, object]


@dataclass(frozen=True)
class Strategy:
    id: str
    description: str
    venues: tuple[str, ...]
    symbols: tuple[str, ...]
    threshold: float | None
    warmup: int
    modules: tuple[ModuleDecl, ...]
    cables: tuple[str, ...]
    source: str  # the file it came from


def load_strategy(path: Path, catalog: Catalog) -> Strategy:
    return parse_strategy(read_text(path, "file"), str(path), catalog)


def parse_strategy(text: str, source: str, catalog: Catalog) -> Strategy:
    """The strategy in `text` (from `source`, for errors), checked by building it once."""
    data = parse_toml(text, "file", source)
    _check_storable(data, source)
    _load_custom(data, source, catalog)
    strategy = _strategy(data, _Where(source))
    _try_build(strategy, catalog)
    return strategy


def _check_storable(data: dict[str, object], source: str) -> None:
    """Every string the patches would keep (names, params) is text PostgreSQL can store: a
    TOML escape makes a NUL the request's text did not hold (core.foundations.text)."""
    found = unstorable_values(data, "")
    if found:
        raise InvalidArgument([FieldViolation(where, f"{source}: {why}") for where, why in found])


def _load_custom(data: dict[str, object], source: str, catalog: Catalog) -> None:
    """The quant's own module classes the file names ("package.module:Class"), checked and added
    to the catalog before its modules are read. A module next to the strategy file imports as
    if that folder were on the path."""
    where = _Where(source)
    paths = _list(data, "custom_modules", str, where)
    if paths and Path(source).parent.is_dir() and str(Path(source).parent) not in sys.path:
        sys.path.append(str(Path(source).parent))
    for index, dotted in enumerate(paths):
        with where.under(f"custom_modules[{index}]", replace_field=True):
            catalog.load_custom(dotted)


def patch_id(strategy: Strategy, venue: str, symbol: str) -> str:
    return f"{strategy.id}/{venue}/{symbol}"


def build_patches(
    engine: Engine, strategy: Strategy, now_ns: int, *, skip_existing: bool = False
) -> list[Patch]:
    """One draft patch per (venue, symbol), id "<strategy>/<venue>/<symbol>"; with
    `skip_existing`, none for an id the engine has (a patch restored from the store, which may
    have been edited since: the stored one wins)."""
    patches = []
    for venue in strategy.venues:
        for symbol in strategy.symbols:
            if skip_existing and patch_id(strategy, venue, symbol) in engine.patches:
                continue
            patch = engine.create_patch(
                patch_id(strategy, venue, symbol),
                strategy.id,
                now_ns,
                venue=venue,
                symbol=symbol,
                warmup=strategy.warmup,
            )
            install(patch, strategy, now_ns)
            patches.append(patch)
    return patches


def install(patch: Patch, strategy: Strategy, now_ns: int) -> None:
    """Add the strategy's modules and cables to a (new) patch."""
    where = _Where(strategy.source)
    for decl in strategy.modules:
        with where.under(f"modules.{decl.id}"):
            patch.add_module(decl.id, decl.type, _with_threshold(decl, strategy), now_ns)
    for index, cable in enumerate(strategy.cables):
        with where.under(f"cables[{index}]", replace_field=True):
            patch.connect(cable, now_ns)


# ---- reading


class _Where:
    """Errors of one file: the field is the key, the text starts with the file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, what: str) -> InvalidArgument:
        return InvalidArgument.field(key, f"{self.source}: {what}")

    def under(self, key: str, replace_field: bool = False) -> _Under:
        return _Under(self, key, replace_field)


class _Under:
    """Re-raise an InvalidArgument from building with the key and file named."""

    def __init__(self, where: _Where, key: str, replace_field: bool) -> None:
        self.where, self.key, self.replace_field = where, key, replace_field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, InvalidArgument):
            raise InvalidArgument([self._violation(v) for v in exc.violations]) from None
        if isinstance(exc, TrademeshError):
            raise self.where.error(self.key, str(exc)) from None

    def _violation(self, v: FieldViolation) -> FieldViolation:
        field = self.key if self.replace_field else f"{self.key}.{v.field.partition('.')[2] or v.field}"
        return FieldViolation(field, f"{self.where.source}: {v.description}")


def _strategy(data: dict[str, object], where: _Where) -> Strategy:
    _known(data, _TOP, "", where)
    strategy_id = _text(data, "id", where)
    if not _STRATEGY_ID.match(strategy_id):
        raise where.error("id", f"{shown(strategy_id)} is not a strategy id (a-z, 0-9, _ and -)")
    modules = _list(data, "modules", dict, where)
    cables = _list(data, "cables", str, where)
    for key, given, most in (("modules", modules, MAX_MODULES), ("cables", cables, MAX_CABLES)):
        if len(given) > most:
            raise where.error(key, f"holds {len(given)}; a patch holds at most {most}")
    return Strategy(
        id=strategy_id,
        description=str(data.get("description", "")),
        venues=tuple(_list(data, "venues", str, where, required=True)),
        symbols=tuple(_list(data, "symbols", str, where, required=True)),
        threshold=_threshold(data, where),
        warmup=_warmup(data, where),
        modules=tuple(_module(m, i, where) for i, m in enumerate(modules)),
        cables=tuple(cables),
        source=where.source,
    )


def _module(data: dict[str, object], index: int, where: _Where) -> ModuleDecl:
    module_id = data.get("id")
    key = f"modules.{module_id}" if isinstance(module_id, str) and module_id else f"modules[{index}]"
    _known(data, _MODULE, key, where)
    if not isinstance(module_id, str) or not module_id:
        raise where.error(f"{key}.id", "missing (every module needs an id)")
    type_name = data.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise where.error(f"{key}.type", "missing (every module needs a type)")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise where.error(f"{key}.params", "is not a table")
    return ModuleDecl(module_id, type_name, params)


def _known(data: Mapping[str, object], known: set[str], key: str, where: _Where) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise where.error(name, f"unknown key (keys: {', '.join(sorted(known))})")


def _text(data: Mapping[str, object], key: str, where: _Where) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise where.error(key, "missing or not text")
    return value


def _list(data: Mapping[str, object], key: str, kind: type, where: _Where, required: bool = False) -> list:  # type: ignore[type-arg]
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        raise where.error(key, f"is not a list of {'tables' if kind is dict else 'text'}")
    if required and not value:
        raise where.error(key, "needs at least one")
    return value


def _threshold(data: Mapping[str, object], where: _Where) -> float | None:
    value = data.get("threshold")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise where.error("threshold", "is not a number >= 0")
    return float(value)


def _warmup(data: Mapping[str, object], where: _Where) -> int:
    value = data.get("warmup", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise where.error("warmup", "is not a whole number from 0 to 1000000")
    return value


def _with_threshold(decl: ModuleDecl, strategy: Strategy) -> Mapping[str, object]:
    if decl.type != _SCORE_TYPE or strategy.threshold is None:
        return decl.params
    if "threshold" in decl.params:
        # Raised inside install's `under`, which adds the file and the modules. prefix.
        raise InvalidArgument.field(f"{decl.id}.params.threshold", "set here and as the strategy's threshold")
    return {**decl.params, "threshold": strategy.threshold}


def _try_build(strategy: Strategy, catalog: Catalog) -> None:
    """Build the patch of the first venue and symbol, to check modules and cables."""
    engine = Engine(catalog, timer=lambda: 0)
    build_patches(engine, _first_only(strategy), 0)


def _first_only(strategy: Strategy) -> Strategy:
    return Strategy(
        strategy.id,
        strategy.description,
        strategy.venues[:1],
        strategy.symbols[:1],
        strategy.threshold,
        strategy.warmup,
        strategy.modules,
        strategy.cables,
        strategy.source,
    )
