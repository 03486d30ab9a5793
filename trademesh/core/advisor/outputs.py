"""Each stage's output in the contract's Decision: its JSON and its summary line.

- `stage_outputs(d)`: what each stage made (the core's values, dataclasses and all; None for a
  stage that did not run), `stage_json(output)`: that as JSON, sorted keys;
- `plain(value)`: the JSON values of a stage's output: dataclasses as objects, Decimals as
  strings, enums as their values, feature vectors by name. `stage_json(output)` is
  `json.dumps(plain(output), sort_keys=True, default=str)`, made by the JSON encoder in one
  walk: it asks `plain`'s turn only for what JSON has no type for (a decision's stages hold a
  few hundred values, most of them numbers and strings JSON writes itself);
- `stage_texts(d, kept)`: each stage's JSON, with `kept` (KeptParts) the parts that stay the
  same object from one decision to the next made once;
- `summaries(d)`: one line per stage.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.features import FeatureVector
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.advisor.engine.telemetry import Stage
from trademesh.core.domain.decimals import format_decimal

__all__ = ["KeptParts", "plain", "stage_json", "stage_outputs", "stage_texts", "summaries"]


class _TurnsByType(dict[type, Callable[[Any], Any]]):
    """The turn of each type met, made by `make` the first time the type is looked up."""

    def __init__(self, make: Callable[[type], Callable[[Any], Any]]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, kind: type) -> Callable[[Any], Any]:
        turn = self[kind] = self._make(kind)
        return turn


def plain(value: Any) -> Any:
    """A stage's output as JSON values. How a type is turned is decided once per type."""
    return _TURNS[type(value)](value)


def _leaf_turn(kind: type) -> Callable[[Any], Any] | None:
    """The turn of a value both plain() and the encoder write as one JSON value, or None."""
    if issubclass(kind, Decimal):
        return format_decimal
    if issubclass(kind, enum.Enum):
        return _enum_value
    if issubclass(kind, FeatureVector):
        return FeatureVector.named
    return None


def _turn_of(kind: type) -> Callable[[Any], Any]:
    """plain()'s conversion of one type, its checks in their order (a str enum stays a str)."""
    if kind is type(None) or issubclass(kind, str | int | float):
        return _as_is
    leaf = _leaf_turn(kind)
    if leaf is not None:
        return leaf
    if issubclass(kind, list | tuple | frozenset | set):
        return _plain_items
    if issubclass(kind, Mapping):
        return _plain_mapping
    names = _field_names(kind)
    if names is None:
        return _as_is
    return functools.partial(_plain_fields, names)


def _as_is(value: Any) -> Any:
    return value


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _plain_items(value: Iterable[Any]) -> list[Any]:
    return [plain(v) for v in value]


def _plain_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): plain(v) for k, v in value.items()}


def _plain_fields(names: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {name: plain(getattr(value, name)) for name in names}


_TURNS = _TurnsByType(_turn_of)
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names (None for any other type), looked up once per type."""
    if kind not in _FIELD_NAMES:
        is_dataclass = dataclasses.is_dataclass(kind)
        _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind)) if is_dataclass else None
    return _FIELD_NAMES[kind]


# ---------------------------------------------------------------- the encoder's turns


def _unplain(value: Any) -> Any:
    """The encoder's `default`: one step of plain() for a value JSON has no type for (the
    encoder walks what it gives back, asking again for what is inside)."""
    return _STEPS[type(value)](value)


def _step_of(kind: type) -> Callable[[Any], Any]:
    """plain()'s turn of a type, one level deep; JSON writes str, int, float, None, lists,
    tuples and dicts itself (the same as plain() then JSON: a stage's dicts have str keys)."""
    leaf = _leaf_turn(kind)
    if leaf is not None:
        return leaf
    if issubclass(kind, frozenset | set):
        return list
    if issubclass(kind, Mapping):
        return _str_keys
    names = _field_names(kind)
    if names is None:
        return str  # what json.dumps(..., default=str) makes of it
    return functools.partial(_fields, names)


def _str_keys(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()}


def _fields(names: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in names}


_STEPS = _TurnsByType(_step_of)
_STAGE_JSON = json.JSONEncoder(sort_keys=True, default=_unplain)


def stage_json(output: Any) -> str:
    return _STAGE_JSON.encode(output)


# ---------------------------------------------------------------- the stages


def _context_output(snap: ContextSnapshot) -> dict[str, Any]:
    context = snap.context
    return {
        "reference_price": snap.reference_price,
        "last_price": context.price,
        "spread_ratio": snap.spread_ratio,
        "last_event_age_ms": None if snap.last_event_age_ns is None else snap.last_event_age_ns // 1_000_000,
        "book": context.book,
        "bars": len(context.bars),
        "last_bar": context.bars[-1] if context.bars else None,
        "position": snap.position,
        "equity": snap.equity,
        "open_orders": context.open_orders,
        "recent_signals": [s.signal_id for s in context.recent_signals],
        "instrument": context.instrument,
        "gaps": context.gaps,
        "reconnects": context.reconnects,
        "resyncs": context.resyncs,
        "problems": list(snap.problems),
    }


def stage_outputs(d: Decision) -> dict[Stage, Any]:
    return {
        Stage.CONTEXT: _context_output(d.context),
        Stage.QUALITY: d.quality,
        Stage.EVALUATION: d.evaluation,
        Stage.CONVICTION: d.conviction,
        # The calibration's own "regime" (its label) over the Regime, as ever.
        Stage.CALIBRATION: None if d.calibration is None else {"regime": d.regime, **_as_dict(d.calibration)},
        Stage.SYNTHESIS: d.synthesis,
        Stage.VALIDATION: d.validation,
        Stage.INTENT: None if d.intent is None else {"sizing": d.sizing, "intent": d.intent},
    }


class _Slot:
    """A kept part in its stage's output: the encoder writes its mark (a string), which is then
    replaced by the part's JSON."""

    __slots__ = ("mark", "marked", "text")

    def __init__(self, name: str, text: str) -> None:
        self.mark = f"\x00{name}\x00"
        self.marked = json.dumps(self.mark)  # as the encoder writes it
        self.text = text


def _mark(value: _Slot) -> str:
    return value.mark


_STEPS[_Slot] = _mark
# The parts kept, per stage. The first place a mark is written is its slot: every key before
# it in sorted order holds numbers, Decimals, enums or another slot (no text from outside).
_KEPT = {Stage.CONTEXT: ("book", "instrument", "last_bar"), Stage.EVALUATION: ("features", "model")}


class KeptParts:
    """The JSON of the parts of a decision's stages that stay the same object from one decision
    to the next, made once per object: a market's instrument, book and last bar (the context's
    parts, refreshed in the background and shared by the decisions in between) and its bars'
    features and model score (the core scores equal bars once). Kept per market and part with
    the object they were made of (so its id is no other's), made again for another object (they
    are frozen)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str, str], tuple[object, _Slot]] = {}

    def slot(self, market: tuple[str, str], name: str, value: object) -> _Slot:
        key = (*market, name)
        kept = self._kept.get(key)
        if kept is None or kept[0] is not value:
            kept = self._kept[key] = (value, _Slot(name, stage_json(value)))
        return kept[1]


def _with_kept(output: Any, names: tuple[str, ...], market: tuple[str, str], kept: KeptParts) -> str:
    parts = dict(output) if isinstance(output, dict) else _as_dict(output)
    slots = []
    for name in names:
        if parts[name] is not None:
            parts[name] = slot = kept.slot(market, name, parts[name])
            slots.append(slot)
    text = stage_json(parts)
    for slot in slots:
        text = text.replace(slot.marked, slot.text, 1)
    return text


def stage_texts(d: Decision, kept: KeptParts | None = None) -> dict[Stage, str]:
    """Each stage's output JSON ("" for a stage that has none): the same text with `kept` as
    without."""
    market = (d.signal.venue, d.signal.symbol)
    texts = {}
    for stage, output in stage_outputs(d).items():
        names = _KEPT.get(stage)
        if output is None:
            texts[stage] = ""
        elif kept is None or names is None:
            texts[stage] = stage_json(output)
        else:
            texts[stage] = _with_kept(output, names, market, kept)
    return texts


def _as_dict(value: Any) -> dict[str, Any]:
    names = _field_names(type(value))
    assert names is not None  # a dataclass
    return _fields(names, value)


def _dec(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def summaries(d: Decision) -> dict[Stage, str]:
    out: dict[Stage, str] = {Stage.CONTEXT: f"reference price {_dec(d.context.reference_price) or 'none'}"}
    if d.quality is not None:
        out[Stage.QUALITY] = f"quality {d.quality.score:.2f} vs threshold {d.quality.threshold:.2f}"
    if d.evaluation is not None:
        p = d.evaluation.p_direction
        out[Stage.EVALUATION] = (
            "model "
            + ("n/a" if p is None else f"{p:.3f}")
            + (f" ({d.evaluation.note})" if d.evaluation.note else "")
        )
    if d.conviction is not None:
        out[Stage.CONVICTION] = f"raw conviction {d.conviction.raw:.3f}"
    if d.calibration is not None and d.regime is not None:
        out[Stage.CALIBRATION] = (
            f"{d.regime.label}: {d.calibration.raw:.3f} -> {d.calibration.calibrated:.3f} "
            f"({d.calibration.method.value})"
        )
    if d.synthesis is not None:
        s = d.synthesis
        out[Stage.SYNTHESIS] = f"{s.source.value} {s.bias.value}, final conviction {s.final_conviction:.3f}"
    if d.validation is not None:
        plan = d.validation.plan
        out[Stage.VALIDATION] = "risk/reward " + ("n/a" if plan is None else _dec(plan.risk_reward))
    if d.intent is not None:
        out[Stage.INTENT] = f"{d.intent.side.value} {_dec(d.intent.size)} {d.intent.symbol}"
    return out
