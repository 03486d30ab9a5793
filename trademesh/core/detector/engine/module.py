"""A module of a patch: typed input and output ports, typed parameters, and its step.

Every module type (built in or a quant's own class) declares a ModuleSpec and implements
`step`. The engine calls `step` once per evaluation of its patch, in topological order, with
the current value of every input and whether it changed since the module's last step; the
module answers the values of its outputs that changed (a mapping of output port name to
value; ports it leaves out keep their value).

A module may also offer the cheap step protocol (trademesh.core.detector.engine.kernel): `kernel`
answers a plain function of positional values, which the compiled plan calls instead of
`step`; a `KernelModule` implements only `kernel` and gets `step` from it.

Rules every module keeps (the backtest depends on them):
- no I/O, no wall clock, no randomness without a seed parameter: time is `now_ns`, given;
- O(1) work per step for indicators (running sums, deques), never a pass over the window;
- state lives on the instance; the same inputs in the same order give the same outputs.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from trademesh.core.detector.engine.kernel import Kernel, answer_of, kernel_args
from trademesh.core.detector.engine.values import PortType, Value
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "Category",
    "Inputs",
    "KernelModule",
    "Module",
    "ModuleSpec",
    "Outputs",
    "Param",
    "ParamKind",
    "Port",
]


class Category(enum.Enum):
    SOURCE = "source"
    INDICATOR = "indicator"
    LOGIC = "logic"
    MATH = "math"
    SCORING = "scoring"
    SINK = "sink"


@dataclass(frozen=True)
class Port:
    name: str
    type: PortType
    description: str = ""
    # An optional input may stay unconnected (the module then sees None).
    optional: bool = False


class ParamKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"  # one of `choices` (text)
    TEXT = "text"  # free text, e.g. a symbol or a rule's name


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: int | float | bool | str
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: object) -> int | float | bool | str:
        """`value` as this parameter's type; InvalidArgument naming the parameter otherwise."""
        checked = _as_kind(self, value)
        if isinstance(checked, (int, float)) and not isinstance(checked, bool):
            if not math.isfinite(checked):
                raise InvalidArgument.field(self.name, f"{checked} is not a finite number")
            if (self.minimum is not None and checked < self.minimum) or (
                self.maximum is not None and checked > self.maximum
            ):
                raise InvalidArgument.field(self.name, f"{checked} is out of range: {self._range()}")
        if self.kind is ParamKind.CHOICE and checked not in self.choices:
            raise InvalidArgument.field(self.name, f"{checked!r} is not one of {', '.join(self.choices)}")
        return checked

    def _range(self) -> str:
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"{low} to {high}"


def _as_kind(param: Param, value: object) -> int | float | bool | str:
    kind = param.kind
    if kind is ParamKind.BOOL and isinstance(value, bool):
        return value
    if kind is ParamKind.INT and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is ParamKind.FLOAT and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in (ParamKind.CHOICE, ParamKind.TEXT) and isinstance(value, str) and len(value) <= 256:
        return value
    raise InvalidArgument.field(param.name, f"{_shown(value)} is not a {kind.value}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:64]}... ({len(text)} characters)"


@dataclass(frozen=True)
class ModuleSpec:
    """A module type as the catalog shows it."""

    type: str  # e.g. "ema"; unique in the catalog
    category: Category
    description: str
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    params: tuple[Param, ...] = ()
    # Stepped on every clock tick too (cooldown, hold-for-N in time), not only when an input changed.
    time_driven: bool = False

    def input(self, name: str) -> Port | None:
        return next((port for port in self.inputs if port.name == name), None)

    def output(self, name: str) -> Port | None:
        return next((port for port in self.outputs if port.name == name), None)

    def checked_params(self, given: Mapping[str, object]) -> dict[str, int | float | bool | str]:
        """Every parameter: given ones checked, others at their defaults; unknown names refused."""
        known = {param.name: param for param in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            message = f"{self.type} has no parameter {_shown(unknown[0])} (parameters: {names})"
            raise InvalidArgument.field(unknown[0], message)
        return {
            name: param.check(given[name]) if name in given else param.default
            for name, param in known.items()
        }


@dataclass
class Inputs:
    """What a module sees at a step: each input's current value and whether it is new.

    `values` holds a key for every connected input (its value may still be None); an optional
    input left unconnected has no key, which `connected` tells apart."""

    values: dict[str, Value] = field(default_factory=dict)
    fresh: frozenset[str] = frozenset()

    def __getitem__(self, name: str) -> Value:
        return self.values.get(name)

    def is_fresh(self, name: str) -> bool:
        return name in self.fresh

    def connected(self, name: str) -> bool:
        return name in self.values


Outputs = Mapping[str, Value]


class Module:
    """The base of every module type: set `spec`, take the checked params in __init__, and
    implement `step`. `warmup` is how many input values (or bars) the module needs before its
    outputs mean anything; the engine warms a patch up from history before it may emit."""

    spec: ClassVar[ModuleSpec]

    def __init__(self, params: Mapping[str, int | float | bool | str]) -> None:
        self.params = dict(params)

    @property
    def warmup(self) -> int:
        return 0

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        raise NotImplementedError

    def kernel(self, connected: frozenset[str]) -> Kernel | None:
        """The cheap step protocol for a plan whose cables reach the inputs `connected`, or
        None (the default): the plan then calls `step` with an `Inputs`."""
        return None

    def retune(self, params: Mapping[str, int | float | bool | str]) -> bool:
        """Take new (checked) parameter values live, keeping state; True when done. The default
        says no: the engine then rebuilds the module with the new values (its state, and its
        warm-up, start over)."""
        return False


class KernelModule(Module):
    """A module written once, as its kernel: `step` runs the kernel over an `Inputs` (for
    tests and the reference walk), the compiled plan calls the kernel directly."""

    def kernel(self, connected: frozenset[str]) -> Kernel:
        raise NotImplementedError

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        kernel = self.kernel(frozenset(inputs.values))
        answer = kernel.call(*kernel_args(kernel, inputs.values, inputs.fresh, now_ns))
        return answer_of(answer, tuple(port.name for port in self.spec.outputs))
