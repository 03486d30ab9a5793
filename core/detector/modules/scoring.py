"""The weighted score: up to eight rules, each a true/false (`rule_i`) or a graded number in
[0, 1] (`level_i`), weighted; the score, its conviction and whether it reached the threshold.

A rule counts when one of its inputs is connected: a true rule adds its weight, a graded one
its weight times its level (clamped to [0, 1]; fired when above 0). conviction = score / the
sum of the weights of the rules that count, so it lies in [0, 1]; `triggered` when
score >= threshold (the threshold is in score units, like the weights).
"""

from __future__ import annotations

from core.detector.engine.module import Category, Inputs, ModuleSpec, Outputs, Param, ParamKind, Port
from core.detector.engine.values import Direction, PortType, RuleValue, SignalValue
from core.detector.modules._common import Params, Retunable, number
from core.errors import InvalidArgument

__all__ = ["RULES", "WeightedScore"]

RULES = 8
_INDEXES = range(1, RULES + 1)


def _inputs() -> tuple[Port, ...]:
    ports: list[Port] = []
    for i in _INDEXES:
        ports.append(Port(f"rule_{i}", PortType.BOOLEAN, f"Rule {i}, true or false", optional=True))
        ports.append(Port(f"level_{i}", PortType.NUMBER, f"Rule {i}, graded in [0, 1]", optional=True))
    return tuple(ports)


def _params() -> tuple[Param, ...]:
    params = [
        Param("threshold", ParamKind.FLOAT, 1.0, "Triggered at or above this score", 0.0, 1e9),
        Param("direction", ParamKind.CHOICE, "long", "The signal's direction", choices=("long", "short")),
    ]
    for i in _INDEXES:
        params.append(Param(f"weight_{i}", ParamKind.FLOAT, 1.0, f"Weight of rule {i}", 0.0, 1e6))
        params.append(Param(f"name_{i}", ParamKind.TEXT, f"rule_{i}", f"Name of rule {i} in the attribution"))
    return tuple(params)


class WeightedScore(Retunable):
    spec = ModuleSpec(
        type="weighted_score",
        category=Category.SCORING,
        description="Weighted rules: a score, conviction = score / total weight, triggered at the threshold.",
        inputs=_inputs(),
        outputs=(
            Port("signal", PortType.SIGNAL, "The score with its conviction, threshold and each rule"),
            Port("score", PortType.NUMBER),
            Port("conviction", PortType.NUMBER),
            Port("triggered", PortType.BOOLEAN),
        ),
        params=_params(),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        rules = tuple(rule for i in _INDEXES if (rule := self._rule(inputs, i)) is not None)
        total = sum(rule.weight for rule in rules)
        score = sum(_contribution(rule) for rule in rules)
        threshold = float(self.params["threshold"])
        conviction = score / total if total > 0 else 0.0
        signal = SignalValue(Direction(self.params["direction"]), conviction, score, threshold, rules)
        return self.changed(
            {"signal": signal, "score": score, "conviction": conviction, "triggered": score >= threshold}
        )

    def _rule(self, inputs: Inputs, i: int) -> RuleValue | None:
        name, weight = str(self.params[f"name_{i}"]), float(self.params[f"weight_{i}"])
        if inputs.connected(f"rule_{i}"):
            flag = inputs[f"rule_{i}"]
            return RuleValue(name, weight, flag if isinstance(flag, bool) else None, flag is True)
        if inputs.connected(f"level_{i}"):
            level = number(inputs[f"level_{i}"])
            return RuleValue(name, weight, level, level is not None and level > 0)
        return None

    def check(self, params: Params) -> None:
        names = [str(params[f"name_{i}"]) for i in _INDEXES]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidArgument.field("name_1", f"rule name {twice[0]!r} is used twice")

    def __init__(self, params: Params) -> None:
        self.check(params)
        super().__init__(params)


def _contribution(rule: RuleValue) -> float:
    if isinstance(rule.value, bool) or rule.value is None:
        return rule.weight if rule.fired else 0.0
    return rule.weight * min(max(rule.value, 0.0), 1.0)
