"""The detector's engine types as the API's messages (trademesh.patch.v1, trademesh.signal.v1),
and request values back as engine values.

Decimal text: conviction, score, threshold, rule weights and fractions are floats in the
engine (signals are not money) and decimal strings on the wire. `decimal_text` writes the
shortest decimal that reads back as the same float (Python's repr), in plain notation:
0.1 -> "0.1", 1e-07 -> "0.0000001", 3.0 -> "3"; never the binary expansion
(0.1000000000000000055511151231257827...). A float that is 0.30000000000000004 (0.1 + 0.2)
is written so, because that is its value. Not-finite values (which no built-in module emits)
are written "".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.changes import (
    CableConnected,
    CableDisconnected,
    Change,
    ModuleAdded,
    ModuleRemoved,
    ParamSet,
    PatchCreated,
    PatchDeleted,
    PatchUpdated,
    StateChanged,
)
from trademesh.core.detector.engine.graph import Cable
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.module import Category, Module, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.outputs import EmittedSignal, PositionRequest
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.detector.engine.values import BarValue, BookValue, PortType, SignalValue, TradeValue
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = [
    "BUILTIN_PREFIX",
    "cable_to_pb",
    "catalog_to_pb",
    "change_detail",
    "change_kind",
    "change_to_pb",
    "decimal_text",
    "market_of",
    "module_type_to_pb",
    "param_value_to_pb",
    "patch_state",
    "patch_to_pb",
    "position_to_pb",
    "probe_value_to_pb",
    "python_value",
    "signal_to_pb",
    "state_to_pb",
    "summary_to_pb",
]

# Module classes defined under this package are built in; any other is a quant's own.
BUILTIN_PREFIX = "trademesh.core.detector.modules."
_TEXT_CHARS = 200

_PORT_TYPES = {
    PortType.NUMBER: pb.PORT_TYPE_NUMBER,
    PortType.BOOLEAN: pb.PORT_TYPE_BOOLEAN,
    PortType.TRADE: pb.PORT_TYPE_TRADE,
    PortType.BOOK: pb.PORT_TYPE_BOOK,
    PortType.BAR: pb.PORT_TYPE_BAR,
    PortType.SIGNAL: pb.PORT_TYPE_SIGNAL,
}
_PARAM_KINDS = {
    ParamKind.INT: pb.PARAM_KIND_INT,
    ParamKind.FLOAT: pb.PARAM_KIND_FLOAT,
    ParamKind.BOOL: pb.PARAM_KIND_BOOL,
    ParamKind.CHOICE: pb.PARAM_KIND_CHOICE,
    ParamKind.TEXT: pb.PARAM_KIND_TEXT,
}
_CATEGORIES = {
    Category.SOURCE: pb.MODULE_CATEGORY_SOURCE,
    Category.INDICATOR: pb.MODULE_CATEGORY_INDICATOR,
    Category.LOGIC: pb.MODULE_CATEGORY_LOGIC,
    Category.MATH: pb.MODULE_CATEGORY_MATH,
    Category.SCORING: pb.MODULE_CATEGORY_SCORING,
    Category.SINK: pb.MODULE_CATEGORY_SINK,
}
_STATES = {
    PatchState.DRAFT: pb.PATCH_STATE_DRAFT,
    PatchState.ACTIVE: pb.PATCH_STATE_ACTIVE,
    PatchState.PAUSED: pb.PATCH_STATE_PAUSED,
    PatchState.ARCHIVED: pb.PATCH_STATE_ARCHIVED,
    PatchState.ERRORED: pb.PATCH_STATE_ERRORED,
}
_STATES_BACK = {value: key for key, value in _STATES.items()}
_DIRECTIONS = {
    Direction.LONG: sig.DIRECTION_LONG,
    Direction.SHORT: sig.DIRECTION_SHORT,
    Direction.FLAT: sig.DIRECTION_FLAT,
}
_ACTIONS = {
    "open": sig.POSITION_ACTION_OPEN,
    "close": sig.POSITION_ACTION_CLOSE,
    "reduce": sig.POSITION_ACTION_REDUCE,
    "flip": sig.POSITION_ACTION_FLIP,
}

ParamPython = int | float | bool | str


# ---- decimals


def decimal_text(value: float) -> str:
    """The shortest decimal that reads back as `value`, plain notation ("" when not finite)."""
    if not math.isfinite(value):
        return ""
    return format_decimal(Decimal(repr(float(value))))


# ---- parameters


def param_value_to_pb(value: ParamPython) -> pb.ParamValue:
    if isinstance(value, bool):
        return pb.ParamValue(bool_value=value)
    if isinstance(value, int):
        return pb.ParamValue(int_value=value)
    if isinstance(value, float):
        return pb.ParamValue(float_value=value)
    return pb.ParamValue(text_value=value)


def python_value(value: pb.ParamValue, field: str, kind: ParamKind | None = None) -> ParamPython:
    """A request's ParamValue as the engine takes it; InvalidArgument at `field` when unset.

    With the parameter's `kind`: a whole float_value for an INT parameter is taken as the int
    (JSON clients cannot always tell 12 from 12.0)."""
    which = value.WhichOneof("value")
    if which is None:
        raise InvalidArgument.field(field, "no value set (int_value, float_value, bool_value or text_value)")
    found: ParamPython = getattr(value, which)
    if kind is ParamKind.INT and isinstance(found, float) and found.is_integer() and abs(found) < 2**63:
        return int(found)
    return found


# ---- catalog


def catalog_to_pb(catalog: Catalog) -> list[pb.ModuleType]:
    """Every module type, sorted by category then type (as Catalog.describe)."""
    classes = sorted(catalog.types.values(), key=lambda c: (c.spec.category.value, c.spec.type))
    return [module_type_to_pb(c.spec, custom=_is_custom(c)) for c in classes]


def _is_custom(module_class: type[Module]) -> bool:
    return not module_class.__module__.startswith(BUILTIN_PREFIX)


def module_type_to_pb(spec: ModuleSpec, custom: bool = False) -> pb.ModuleType:
    return pb.ModuleType(
        type=spec.type,
        category=_CATEGORIES[spec.category],
        description=spec.description,
        inputs=[_port(port) for port in spec.inputs],
        outputs=[_port(port) for port in spec.outputs],
        params=[_param_spec(param) for param in spec.params],
        time_driven=spec.time_driven,
        custom=custom,
    )


def _port(port: Port) -> pb.PortSpec:
    return pb.PortSpec(
        name=port.name, type=_PORT_TYPES[port.type], description=port.description, optional=port.optional
    )


def _param_spec(param: Param) -> pb.ParamSpec:
    spec = pb.ParamSpec(
        name=param.name,
        kind=_PARAM_KINDS[param.kind],
        default_value=param_value_to_pb(param.default),
        description=param.description,
        choices=list(param.choices),
    )
    if param.minimum is not None:
        spec.minimum = param.minimum
    if param.maximum is not None:
        spec.maximum = param.maximum
    return spec


# ---- patches


def state_to_pb(state: PatchState) -> pb.PatchState.ValueType:
    return _STATES[state]


def patch_state(value: int, field: str) -> PatchState:
    """A request's PatchState; InvalidArgument at `field` when unspecified or unknown."""
    state: PatchState | None = _STATES_BACK.get(value)  # type: ignore[call-overload]
    if state is None:
        raise InvalidArgument.field(field, f"{value} is not a patch state (1-5)")
    return state


def market_of(patch: Patch) -> list[pb.Market]:
    return [pb.Market(venue=patch.venue, symbol=patch.symbol)] if patch.venue or patch.symbol else []


def patch_to_pb(patch: Patch) -> pb.PatchGraph:
    graph = patch.graph
    return pb.PatchGraph(
        patch_id=patch.id,
        name=patch.name,
        description=patch.description,
        state=state_to_pb(patch.state),
        version=patch.version,
        markets=market_of(patch),
        modules=[
            pb.Module(
                module_id=node.id,
                type=node.spec.type,
                params={name: param_value_to_pb(value) for name, value in node.params.items()},
            )
            for node in graph.nodes.values()
        ],
        cables=[cable_to_pb(patch, cable) for cable in sorted(graph.cables.values())],
        evaluation_order=list(graph.order),
        warmup_bars=max(patch.history_needed().values(), default=patch.declared_warmup),
        error=_error(patch.error),
        strategy_id=patch.strategy_id,
    )


def cable_to_pb(patch: Patch, cable: Cable) -> pb.Cable:
    port = patch.graph.nodes[cable.source.module].spec.output(cable.source.port)
    return pb.Cable(
        from_module=cable.source.module,
        from_port=cable.source.port,
        to_module=cable.target.module,
        to_port=cable.target.port,
        type=_PORT_TYPES[port.type] if port is not None else pb.PORT_TYPE_UNSPECIFIED,
    )


def _error(text: str | None) -> pb.PatchError | None:
    """The patch's error text ("module (type): Error: ...") with its module id."""
    if text is None:
        return None
    return pb.PatchError(module_id=text.partition(" ")[0], message=text)


def summary_to_pb(patch: Patch) -> pb.PatchSummary:
    return pb.PatchSummary(
        patch_id=patch.id,
        name=patch.name,
        state=state_to_pb(patch.state),
        version=patch.version,
        markets=market_of(patch),
    )


# ---- signals and position requests


def signal_to_pb(signal: EmittedSignal) -> sig.Signal:
    return sig.Signal(
        signal_id=signal.signal_id,
        venue=signal.venue,
        symbol=signal.symbol,
        direction=_DIRECTIONS[signal.direction],
        conviction=decimal_text(signal.conviction),
        score=decimal_text(signal.score),
        threshold=decimal_text(signal.threshold),
        strategy_id=signal.strategy_id,
        patch_version=signal.patch_version,
        rules=[
            sig.RuleAttribution(
                name=rule.name,
                weight=decimal_text(rule.weight),
                value=_rule_value(rule.value),
                fired=rule.fired,
            )
            for rule in signal.rules
        ],
        ts_event_ns=signal.ts_event_ns,
        ts_signal_ns=signal.signal_time_ns,
    )


def _rule_value(value: float | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return decimal_text(value)


def position_to_pb(request: PositionRequest) -> sig.PositionRequest:
    return sig.PositionRequest(
        request_id=request.request_id,
        venue=request.venue,
        symbol=request.symbol,
        action=_ACTIONS.get(request.action, sig.POSITION_ACTION_UNSPECIFIED),
        direction=_DIRECTIONS[request.side]
        if request.action in ("open", "flip")
        else sig.DIRECTION_UNSPECIFIED,
        fraction=decimal_text(request.fraction) if request.action == "reduce" else "",
        strategy_id=request.strategy_id,
        patch_version=request.patch_version,
        ts_event_ns=request.ts_event_ns,
        ts_request_ns=request.time_ns,
    )


# ---- probes


def probe_value_to_pb(value: object) -> pb.ProbeValue:
    """Numbers and booleans as such; trades, books, bars and signals as short text; None as
    an empty value (no value yet)."""
    if value is None:
        return pb.ProbeValue()
    if isinstance(value, bool):
        return pb.ProbeValue(boolean=value)
    if isinstance(value, int | float):
        return pb.ProbeValue(number=float(value))
    return pb.ProbeValue(text=_value_text(value)[:_TEXT_CHARS])


def _value_text(value: object) -> str:
    if isinstance(value, TradeValue):
        side = {True: "buy", False: "sell", None: "?"}[value.taker_buy]
        return f"trade {value.symbol} {value.price:g} x {value.size:g} {side}"
    if isinstance(value, BookValue):
        bid = f"{value.bids[0][0]:g}" if value.bids else "-"
        ask = f"{value.asks[0][0]:g}" if value.asks else "-"
        return f"book {value.symbol} {bid} / {ask}"
    if isinstance(value, BarValue):
        return (
            f"bar {value.symbol} {value.timeframe_s}s o {value.open:g} h {value.high:g}"
            f" l {value.low:g} c {value.close:g} v {value.volume:g}"
        )
    if isinstance(value, SignalValue):
        return (
            f"signal {value.direction.value} score {decimal_text(value.score)}"
            f" / {decimal_text(value.threshold)} conviction {decimal_text(value.conviction)}"
        )
    return repr(value)


# ---- change events

_KINDS: dict[type, pb.PatchEventKind.ValueType] = {
    PatchCreated: pb.PATCH_EVENT_KIND_CREATED,
    PatchUpdated: pb.PATCH_EVENT_KIND_UPDATED,
    PatchDeleted: pb.PATCH_EVENT_KIND_DELETED,
    ModuleAdded: pb.PATCH_EVENT_KIND_MODULE_ADDED,
    ModuleRemoved: pb.PATCH_EVENT_KIND_MODULE_REMOVED,
    CableConnected: pb.PATCH_EVENT_KIND_CABLE_CONNECTED,
    CableDisconnected: pb.PATCH_EVENT_KIND_CABLE_DISCONNECTED,
    ParamSet: pb.PATCH_EVENT_KIND_PARAMS_SET,
    StateChanged: pb.PATCH_EVENT_KIND_STATE_CHANGED,
}


def change_kind(change: Change) -> str:
    """The event kind's short name, as the event log stores it: "module_added"."""
    return pb.PatchEventKind.Name(_KINDS[type(change)]).removeprefix("PATCH_EVENT_KIND_").lower()


def change_detail(change: Change) -> str:
    """What changed, for people: "fast.period = 12", "ema.value -> cross.a"."""
    detail: Callable[[Change], str] = _DETAILS[type(change)]
    return detail(change)


def _created(c: Change) -> str:
    assert isinstance(c, PatchCreated)
    market = f" on {c.venue} {c.symbol}" if c.venue or c.symbol else ""
    return f"created for strategy {c.strategy_id}{market}"


def _updated(c: Change) -> str:
    assert isinstance(c, PatchUpdated)
    return f"name {c.name!r}, market {c.venue or '-'} {c.symbol or '-'}"


def _added(c: Change) -> str:
    assert isinstance(c, ModuleAdded)
    return f"{c.module_id} ({c.type})"


def _removed(c: Change) -> str:
    assert isinstance(c, ModuleRemoved)
    return f"{c.module_id}" + (f", and its cables {', '.join(c.cables)}" if c.cables else "")


def _cable(c: Change) -> str:
    assert isinstance(c, CableConnected | CableDisconnected)
    return c.cable


def _param(c: Change) -> str:
    assert isinstance(c, ParamSet)
    return f"{c.module_id}.{c.name} = {c.value!r}"


def _state(c: Change) -> str:
    assert isinstance(c, StateChanged)
    return f"{c.old} -> {c.new}" + (f": {c.reason}" if c.reason else "")


def _deleted(c: Change) -> str:
    return "deleted"


_DETAILS: dict[type, Callable[[Change], str]] = {
    PatchCreated: _created,
    PatchUpdated: _updated,
    PatchDeleted: _deleted,
    ModuleAdded: _added,
    ModuleRemoved: _removed,
    CableConnected: _cable,
    CableDisconnected: _cable,
    ParamSet: _param,
    StateChanged: _state,
}


def change_to_pb(change: Change, state: PatchState | None) -> pb.PatchEvent:
    """The change as a PatchEvent; `state` is the patch's state after it (None: deleted)."""
    if isinstance(change, StateChanged):
        state = PatchState(change.new)
    return pb.PatchEvent(
        patch_id=change.patch_id,
        kind=_KINDS[type(change)],
        version=change.version,
        state=_STATES[state] if state is not None else pb.PATCH_STATE_UNSPECIFIED,
        detail=change_detail(change),
        ts_ns=change.at_ns,
    )
