"""A sweep's options: the config file's `[sweep]` table (its keys: trademesh.core.backtest.sweep_command)
and the flags over it (a flag wins), declared on SweepConfig and read by
trademesh.core.platform.config.schema: an unknown key, or a value of the wrong type or out of its
range, is refused naming the key (`sweep.folds`, `sweep.params.fast.period.low`) and the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, cast

from trademesh.core.backtest.folds import MAX_FOLDS
from trademesh.core.backtest.sweep import MAX_POINTS, METRICS, ParamSpace, Range, Scalar, Values
from trademesh.core.platform.config.schema import (
    NOT_EMPTY,
    OneOf,
    Parse,
    Reading,
    Within,
    check_fields,
    read_value,
)
from trademesh.core.platform.config.schema.words import not_a
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = ["ENGINES", "FLAGS", "MAX_WORKERS", "SweepConfig", "sweep_config"]

ENGINES = ("local", "dask")
MAX_WORKERS = 1024


def _number(value: Any, path: str) -> int | float:
    """A range's end: a whole number or a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument.field(path, not_a(value, "a number"))
    if not math.isfinite(value):
        raise InvalidArgument.field(path, not_a(value, "a finite number"))
    return value


def _scalar(value: Any, path: str) -> Scalar:
    """A listed value: what a module's parameter can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument.field(path, not_a(value, "a finite number"))
    if not isinstance(value, bool | int | float | str):
        raise InvalidArgument.field(path, not_a(value, "a number, true or false, or a string"))
    return value


@dataclass(frozen=True)
class _Span:
    """A range to sample from: `{ low = 5, high = 30 }`."""

    low: Annotated[int | float, Parse(_number)]
    high: Annotated[int | float, Parse(_number)]


_LIST = tuple[Annotated[Scalar, Parse(_scalar)], ...]


def _values(value: Any, path: str) -> Values:
    if isinstance(value, Mapping):
        span: _Span = read_value(_Span, value, path)
        return Range(span.low, span.high)
    if isinstance(value, list):
        listed: tuple[Scalar, ...] = read_value(_LIST, value, path)
        return listed
    raise InvalidArgument.field(path, not_a(value, "a list or a range ({ low = ..., high = ... })"))


def _params(value: Any, path: str) -> ParamSpace:
    """`[sweep.params]`: each "module.param" a list of values or a range."""
    table: dict[str, Any] = read_value(dict[str, Any], value, path)
    params = tuple((name, _values(given, f"{path}.{name}")) for name, given in table.items())
    try:
        return ParamSpace(params)
    except InvalidArgument as exc:  # ParamSpace names `param` or `param.<name>`: here, `path`
        raise InvalidArgument(
            [FieldViolation(path + v.field.removeprefix("param"), v.description) for v in exc.violations]
        ) from None


@dataclass(frozen=True)
class SweepConfig:
    random: Annotated[int, Within(0, MAX_POINTS)] = 0  # N points sampled with `seed`; 0: the grid
    seed: int = 1
    metric: Annotated[str, OneOf(tuple(METRICS))] = "sharpe"
    of: Annotated[str, NOT_EMPTY] = "total"  # "total" (the account) or the strategy's id
    folds: Annotated[int, Within(0, MAX_FOLDS)] = 0  # 0: the whole range, no walk forward
    anchored: bool = False
    engine: Annotated[str, OneOf(ENGINES)] = "local"
    address: str = ""  # a Dask scheduler; "": a local cluster
    workers: Annotated[int, Within(0, MAX_WORKERS)] = 0  # 0: one per core
    synthetic_seed: Annotated[int, Within(-1, None)] = -1  # -1: the recorded history
    params: Annotated[ParamSpace | None, Parse(_params)] = None  # None: --param flags only

    def __post_init__(self) -> None:
        check_fields(self)


# The keys a flag gives (None: not given); `--param` flags replace `params` whole (sweep_command).
FLAGS = tuple(item.name for item in fields(SweepConfig) if item.name != "params")


def sweep_config(table: Any, flags: Mapping[str, Any], source: str | None = None) -> SweepConfig:
    """The file's `[sweep]` table (`source`, for errors) with the flags given (None: not given)
    over it."""
    given = {key: value for key, value in flags.items() if value is not None}
    reading = Reading()
    config = reading.make(SweepConfig, {**_read(table, source, "sweep"), **_read(given, None, "")})
    reading.done()
    return cast(SweepConfig, config)


def _read(table: Any, source: str | None, path: str) -> dict[str, Any]:
    reading = Reading(source)
    values = reading.values(SweepConfig, table, path)
    reading.done()
    return values or {}
