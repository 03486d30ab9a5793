"""Small helpers the built-in modules share."""

from __future__ import annotations

from collections.abc import Mapping

from core.detector.engine.module import Inputs, Module, Outputs
from core.detector.engine.values import Value

__all__ = ["Params", "Retunable", "number", "operand"]

Params = Mapping[str, int | float | bool | str]


def number(value: Value) -> float | None:
    """A NUMBER input's value (None when it has none)."""
    return value if isinstance(value, float | int) and not isinstance(value, bool) else None


def operand(inputs: Inputs, port: str, constant: float) -> float | None:
    """The second operand: the `port` input when it is connected, else the constant param."""
    return number(inputs[port]) if inputs.connected(port) else constant


class Retunable(Module):
    """A module whose state does not depend on its parameters: it reads them at every step, so
    a live change applies at the next step and keeps the state. Its steps answer only the
    outputs that changed (`changed`), so a steady condition does not wake what is downstream."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._last: dict[str, Value] = {}

    def changed(self, out: dict[str, Value]) -> Outputs:
        """The outputs of `out` whose value (or type) differs from the last one answered."""
        fresh = {
            port: value
            for port, value in out.items()
            if port not in self._last
            or self._last[port] != value
            or type(self._last[port]) is not type(value)
        }
        self._last.update(fresh)
        return fresh

    def retune(self, params: Params) -> bool:
        self.check(params)
        self.params = dict(params)
        return True

    def check(self, params: Params) -> None:
        """Refuse parameter values that do not go together (InvalidArgument)."""
