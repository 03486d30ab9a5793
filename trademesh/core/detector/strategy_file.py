"""Strategies as TOML files: the modules (id, type, params), the cables ("a.out -> b.in"), the
venues and symbols it runs on, its threshold and its warm-up.

    id = "trend"
    description = "..."
    venues = ["sim"]
    symbols = ["BTC/USDT"]   # or a screen's: { screen = "momentum", top = 5, min_hold_s = 600 }
    threshold = 2.0          # optional: the `threshold` of every weighted_score not setting it
    warmup = 60              # optional: values of history its bar and trade sources need at least
    cables = ["bars.bar -> fields.bar", ...]
    custom_modules = ["my_modules:Spread"]   # optional: your own module classes (next to the file)

    [[modules]]
    id = "bars"
    type = "trade_bars"
    params = { timeframe = "1m" }

A strategy runs as one patch per (venue, symbol); sources and sinks left without a venue or
symbol take the patch's. A strategy whose `symbols` is a screen's table trades the symbols that
screen ranks first on its one venue (`ScreenSymbols`): it has no patch until the detector hears
the screen's results (trademesh.core.detector.screens), then one per symbol in the set. The keys are
Strategy's and ModuleDecl's, read by trademesh.core.platform.config.schema; a bad file is refused with
an InvalidArgument whose field is the key (`modules.fast.params.period`, `cables[2]`) and whose
text says what is wrong and names the file (`... (in strategies/trend.toml)`); unknown keys are
refused too. Pure: the caller reads the file (`load_strategy` is the shell's).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, cast

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.graph import MAX_CABLES, MAX_MODULES
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.config.file import parse_toml, read_text
from trademesh.core.platform.config.schema import (
    NOT_A_KEY,
    NOT_EMPTY,
    Items,
    Label,
    Matches,
    Parse,
    Reading,
    Within,
    read_value,
)
from trademesh.core.platform.config.schema.words import REQUIRED, in_file, not_a
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, TrademeshError
from trademesh.core.platform.text import unstorable_values

__all__ = [
    "ModuleDecl",
    "ScreenSymbols",
    "Strategy",
    "build_patches",
    "install",
    "load_strategy",
    "parse_strategy",
    "patch_id",
]

_STRATEGY_ID = Matches(r"[a-z0-9][a-z0-9_-]{0,63}", "a strategy id (a-z, 0-9, _ and -)")
_SCREEN_NAME = Matches(r"[a-z0-9][a-z0-9_-]{0,63}", "a screen name (a-z, 0-9, _ and -)")
# The symbol a screen-driven strategy's file is checked on (its patches come from the screen).
_CHECK_SYMBOL = "BTC/USDT"
_SCORE_TYPE = "weighted_score"
# Read before the modules (their classes join the catalog first), and not kept.
_CUSTOM = "custom_modules"


@dataclass(frozen=True)
class ModuleDecl:
    id: Annotated[str, NOT_EMPTY]
    type: Annotated[str, NOT_EMPTY]
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ScreenSymbols:
    """`symbols = { screen = "momentum", top = 5, min_hold_s = 600 }`: the first `top` symbols of
    the screen's results on the bus (screens.<screen>), each held at least `min_hold_s` after it
    entered (trademesh.core.domain.screen_membership). Left out, each is the screen's own (its results
    carry its top and hold); a `top` above the screen's is its top."""

    screen: Annotated[str, _SCREEN_NAME]
    top: Annotated[int | None, Within(1, 1000)] = None
    min_hold_s: Annotated[int | None, Within(0, 7 * 86_400)] = None


def _venue(raw: object, path: str) -> str:
    # The bus's rule: a patch on a name it refuses would follow nothing (issue 57 item 15).
    return venue_name(read_value(str, raw, path))


def _symbols(raw: object, path: str) -> tuple[str, ...] | ScreenSymbols:
    """`symbols`: a list of symbols, or a screen's table."""
    if isinstance(raw, Mapping):
        return cast(ScreenSymbols, read_value(ScreenSymbols, raw, path))
    if isinstance(raw, list):
        return cast(tuple[str, ...], read_value(Annotated[tuple[str, ...], Items(1)], raw, path))
    raise InvalidArgument.field(
        path, not_a(raw, 'a list of symbols or a screen\'s table ({ screen = "momentum", top = 5 })')
    )


@dataclass(frozen=True, kw_only=True)
class Strategy:
    id: Annotated[str, _STRATEGY_ID]
    description: str = ""
    venues: Annotated[tuple[Annotated[str, Parse(_venue)], ...], Items(1)]
    # The file's list; () when a screen gives them (`screen`).
    symbols: Annotated[tuple[str, ...], Parse(_symbols)] = ()
    screen: Annotated[ScreenSymbols | None, NOT_A_KEY] = None
    threshold: Annotated[float | None, Within(0)] = None
    warmup: Annotated[int, Within(0, 1_000_000)] = 0
    modules: Annotated[tuple[ModuleDecl, ...], Label("id"), Items(0, MAX_MODULES)] = ()
    cables: Annotated[tuple[str, ...], Items(0, MAX_CABLES)] = ()
    source: Annotated[str, NOT_A_KEY]  # the file it came from

    def __post_init__(self) -> None:
        if self.screen is None and not self.symbols:
            raise InvalidArgument.field("symbols", f"{REQUIRED}: a list of symbols, or a screen's table")
        if self.screen is not None and len(self.venues) != 1:
            raise InvalidArgument.field(
                "venues",
                f"a strategy taking its symbols from screen {self.screen.screen!r} trades one venue "
                f"(the screen's), not {len(self.venues)}",
            )


def load_strategy(path: Path, catalog: Catalog) -> Strategy:
    return parse_strategy(read_text(path, "file"), str(path), catalog)


def parse_strategy(text: str, source: str, catalog: Catalog) -> Strategy:
    """The strategy in `text` (from `source`, for errors), checked by building it once."""
    data = parse_toml(text, "file", source)
    _check_storable(data, source)
    _load_custom(data, source, catalog)
    strategy = _strategy(data, source)
    _try_build(strategy, catalog)
    return strategy


def _check_storable(data: dict[str, object], source: str) -> None:
    """Every string the patches would keep (names, params) is text PostgreSQL can store: a
    TOML escape makes a NUL the request's text did not hold (trademesh.core.platform.text)."""
    found = unstorable_values(data, "")
    if found:
        raise InvalidArgument([FieldViolation(where, in_file(why, source)) for where, why in found])


def _load_custom(data: dict[str, object], source: str, catalog: Catalog) -> None:
    """The quant's own module classes the file names ("package.module:Class"), checked and added
    to the catalog before its modules are read. A module next to the strategy file imports as
    if that folder were on the path."""
    reading = Reading(source)
    paths: tuple[str, ...] = reading.value(tuple[str, ...], data.get(_CUSTOM, []), _CUSTOM) or ()
    reading.done()
    if paths and Path(source).parent.is_dir() and str(Path(source).parent) not in sys.path:
        sys.path.append(str(Path(source).parent))
    for index, dotted in enumerate(paths):
        with _Under(source, f"{_CUSTOM}[{index}]", replace_field=True):
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
    for decl in strategy.modules:
        with _Under(strategy.source, f"modules.{decl.id}"):
            patch.add_module(decl.id, decl.type, _with_threshold(decl, strategy), now_ns)
    for index, cable in enumerate(strategy.cables):
        with _Under(strategy.source, f"cables[{index}]", replace_field=True):
            patch.connect(cable, now_ns)


# ---- reading


class _Under:
    """Re-raise an error from building a patch with the key and the file named."""

    def __init__(self, source: str, key: str, replace_field: bool = False) -> None:
        self.source, self.key, self.replace_field = source, key, replace_field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, InvalidArgument):
            raise InvalidArgument([self._violation(v) for v in exc.violations]) from None
        if isinstance(exc, TrademeshError):
            raise InvalidArgument.field(self.key, in_file(str(exc), self.source)) from None

    def _violation(self, v: FieldViolation) -> FieldViolation:
        field = self.key if self.replace_field else f"{self.key}.{v.field.partition('.')[2] or v.field}"
        return FieldViolation(field, in_file(v.description, self.source))


def _strategy(data: dict[str, object], source: str) -> Strategy:
    reading = Reading(source, also={Strategy: (_CUSTOM,)})
    values = reading.values(Strategy, data)
    if values is not None and isinstance(values.get("symbols"), ScreenSymbols):
        values["screen"] = values.pop("symbols")
    strategy = None if values is None else reading.make(Strategy, {**values, "source": source})
    reading.done()
    return cast(Strategy, strategy)


def _with_threshold(decl: ModuleDecl, strategy: Strategy) -> Mapping[str, object]:
    if decl.type != _SCORE_TYPE or strategy.threshold is None:
        return decl.params
    if "threshold" in decl.params:
        # Raised inside install's _Under, which adds the file and the modules. prefix.
        raise InvalidArgument.field(f"{decl.id}.params.threshold", "set here and as the strategy's threshold")
    return {**decl.params, "threshold": strategy.threshold}


def _try_build(strategy: Strategy, catalog: Catalog) -> None:
    """Build the patch of the first venue and symbol, to check modules and cables."""
    engine = Engine(catalog, timer=lambda: 0)
    build_patches(engine, _first_only(strategy), 0)


def _first_only(strategy: Strategy) -> Strategy:
    symbols = strategy.symbols[:1] or (_CHECK_SYMBOL,)  # a screen's: checked on a stand-in
    return dataclasses.replace(strategy, venues=strategy.venues[:1], symbols=symbols)
