"""Small helpers the built-in modules share."""

from __future__ import annotations

from collections.abc import Mapping

from core.detector.engine.module import Inputs, Module
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
    a live change applies at the next step and keeps the state."""

    def retune(self, params: Params) -> bool:
        self.check(params)
        self.params = dict(params)
        return True

    def check(self, params: Params) -> None:
        """Refuse parameter values that do not go together (InvalidArgument)."""
