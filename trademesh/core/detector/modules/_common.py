"""Small helpers the built-in modules share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, final

from trademesh.core.detector.engine.kernel import UNCHANGED
from trademesh.core.detector.engine.module import KernelModule
from trademesh.core.detector.engine.values import Value

__all__ = ["UNSET", "Params", "Retunable", "answer", "number", "same"]

Params = Mapping[str, int | float | bool | str]


@final
class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


# What an output has answered before its first answer: equal to no value.
UNSET: Final = _Unset()


def number(value: Value) -> float | None:
    """A NUMBER input's value (None when it has none)."""
    return value if isinstance(value, float | int) and not isinstance(value, bool) else None


def same(old: object, new: object) -> bool:
    """Whether `new` answers nothing new after `old`: equal and of the same type (True is not
    1.0; NaN is never the same, not even as the same object)."""
    return old == new and type(old) is type(new)


def answer(last: list[object], out: Value) -> object:
    """For a one-output module: `out` when it is not the same as the last answer (it then
    becomes the last), else UNCHANGED."""
    old = last[0]
    if old == out and type(old) is type(out):
        return UNCHANGED
    last[0] = out
    return out


class Retunable(KernelModule):
    """A module whose state does not depend on its parameters: its kernel binds them at every
    plan build (each parameter change), so a live change applies at the next step and keeps
    the state. Its steps answer only the outputs that changed (`last` holds what each output
    answered, in the spec's order), so a steady condition does not wake what is downstream."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.last: list[object] = [UNSET] * len(self.spec.outputs)

    def retune(self, params: Params) -> bool:
        self.check(params)
        self.params = dict(params)
        return True

    def check(self, params: Params) -> None:
        """Refuse parameter values that do not go together (InvalidArgument)."""
