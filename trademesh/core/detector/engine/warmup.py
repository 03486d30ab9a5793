"""Before a patch runs: is it complete, and how much history must warm it up.

A source needs as many values of history as the longest path from it asks for: the sum of
the warm-ups of the modules along the path (an EMA of an RSI waits for both), and at least
the strategy's declared warm-up when it gives bars or trades.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trademesh.core.detector.engine.io import Sink, Source
from trademesh.core.detector.engine.values import PortType
from trademesh.core.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument

if TYPE_CHECKING:
    from trademesh.core.detector.engine.patch import Patch

__all__ = ["history_needed", "validate"]

_HISTORY_TYPES = (PortType.BAR, PortType.TRADE)


def history_needed(patch: Patch) -> dict[str, int]:
    """Per source module id: how many values of history it needs before the patch may run."""
    graph = patch.graph
    need: dict[str, int] = {}
    for module_id in reversed(graph.order):
        downstream = max((need[c.target.module] for c in graph.leaving(module_id)), default=0)
        need[module_id] = patch.modules[module_id].warmup + downstream
    return {
        module_id: _with_declared(patch, module_id, need[module_id])
        for module_id in graph.order
        if isinstance(patch.modules[module_id], Source)
    }


def _with_declared(patch: Patch, module_id: str, need: int) -> int:
    spec = patch.graph.nodes[module_id].spec
    if any(port.type in _HISTORY_TYPES for port in spec.outputs):
        return max(need, patch.declared_warmup)
    return need


def validate(patch: Patch) -> None:
    """InvalidArgument listing every problem of structure; then FailedPrecondition when the
    history fed (Engine.warm) is short of what a source needs."""
    violations = [
        FieldViolation(str(end), "required input is not connected") for end in patch.graph.missing_inputs()
    ]
    for module_id, node in patch.graph.nodes.items():
        try:
            node.spec.checked_params(node.params)
        except InvalidArgument as exc:
            violations += [
                FieldViolation(f"{module_id}.params.{v.field}", v.description) for v in exc.violations
            ]
        module = patch.modules[module_id]
        reason = module.unready() if isinstance(module, Source | Sink) else None
        if reason is not None:
            violations.append(FieldViolation(f"{module_id}.params", reason))
    if violations:
        raise InvalidArgument(violations)
    short = [
        FieldViolation(
            module_id,
            f"needs {need} values of history and was warmed with {patch.warmed.get(module_id, 0)}",
        )
        for module_id, need in history_needed(patch).items()
        if patch.warmed.get(module_id, 0) < need
    ]
    if short:
        reasons = "; ".join(f"{v.field} {v.description}" for v in short)
        raise FailedPrecondition(f"patch {patch.id} is not warmed up: {reasons}", short)
