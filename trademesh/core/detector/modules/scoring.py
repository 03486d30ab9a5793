"""The weighted score: up to eight rules, each a true/false (`rule_i`) or a graded number in
[0, 1] (`level_i`), weighted; the score, its conviction and whether it reached the threshold.

A rule counts when one of its inputs is connected: a true rule adds its weight, a graded one
its weight times its level (clamped to [0, 1]; fired when above 0). conviction = score / the
sum of the weights of the rules that count, so it lies in [0, 1]; `triggered` when
score >= threshold (the threshold is in score units, like the weights).
"""

from __future__ import annotations

from trademesh.core.detector.engine.kernel import UNCHANGED, Kernel
from trademesh.core.detector.engine.module import Category, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import PortType, RuleValue, SignalValue, Value
from trademesh.core.detector.modules._common import Params, Retunable, number
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.platform.errors import InvalidArgument

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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        rules: list[_Rule] = []
        for i in _INDEXES:
            name, weight = str(self.params[f"name_{i}"]), float(self.params[f"weight_{i}"])
            if f"rule_{i}" in connected:
                rules.append(_Rule(f"rule_{i}", name, weight, graded=False))
            elif f"level_{i}" in connected:
                rules.append(_Rule(f"level_{i}", name, weight, graded=True))
        threshold = float(self.params["threshold"])
        score = _Score(self.last, rules, Direction(self.params["direction"]), threshold)
        return Kernel(score.step, tuple(rule.port for rule in rules))

    def check(self, params: Params) -> None:
        names = [str(params[f"name_{i}"]) for i in _INDEXES]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidArgument.field("name_1", f"rule name {twice[0]!r} is used twice")

    def __init__(self, params: Params) -> None:
        self.check(params)
        super().__init__(params)


class _Rule:
    """One connected rule: its RuleValue and contribution for a value on its port (a true/false
    rule's three RuleValues made once)."""

    __slots__ = ("graded", "name", "port", "states", "weight")

    def __init__(self, port: str, name: str, weight: float, *, graded: bool) -> None:
        self.port, self.name, self.weight, self.graded = port, name, weight, graded
        self.states = {
            True: (RuleValue(name, weight, True, True), weight),
            False: (RuleValue(name, weight, False, False), 0.0),
            None: (RuleValue(name, weight, None, False), 0.0),
        }

    def judged(self, value: Value) -> tuple[RuleValue, float]:
        """The rule's RuleValue for `value` and what it adds to the score."""
        if not self.graded:
            return self.states[value if value is True or value is False else None]
        level = number(value)
        if level is None:
            return self.states[None]
        return RuleValue(self.name, self.weight, level, level > 0), self.weight * min(max(level, 0.0), 1.0)


class _Score:
    """A weighted score's step for one wiring and set of parameters.

    With only true/false rules the answers for each combination of True, False and None are
    made once and kept (at most 3**8): a step is then a lookup, and two of these signals are
    equal exactly when they are the same object. Any other value on a rule port
    is judged each time, as a graded rule's level always is."""

    __slots__ = ("cache", "direction", "last", "made", "rules", "threshold", "total")

    def __init__(
        self, last: list[object], rules: list[_Rule], direction: Direction, threshold: float
    ) -> None:
        self.last, self.rules, self.direction, self.threshold = last, rules, direction, threshold
        self.total = sum(rule.weight for rule in rules)
        graded = any(rule.graded for rule in rules)
        self.cache: dict[tuple[object, ...], tuple[object, ...]] | None = None if graded else {}
        # The ids of the cached signals (kept alive by the cache): two of them are equal only
        # when they are the same object, so comparing them needs no SignalValue.__eq__.
        self.made: set[int] = set()

    def step(self, *values: Value) -> object:
        cache = self.cache
        if cache is None:
            outputs = self._outputs(values)
        else:
            # Keyed by the values' ids: True, False and None are single objects, so a key of
            # theirs names exactly one combination (1 == True, but never `is` it).
            key = tuple(map(id, values))
            found = cache.get(key)
            if found is None:
                outputs = self._outputs(values)
                if all(v is True or v is False or v is None for v in values):
                    cache[key] = outputs
                    self.made.add(id(outputs[0]))
            else:
                outputs = found
        return self._changed(outputs)

    def _outputs(self, values: tuple[Value, ...]) -> tuple[object, ...]:
        judged = [rule.judged(value) for rule, value in zip(self.rules, values, strict=True)]
        score = sum(contribution for _, contribution in judged)
        conviction = score / self.total if self.total > 0 else 0.0
        rules = tuple(rule for rule, _ in judged)
        signal = SignalValue(self.direction, conviction, score, self.threshold, rules)
        return signal, score, conviction, score >= self.threshold

    def _changed(self, outputs: tuple[object, ...]) -> object:
        """Only the outputs that are not the same as their last answers (the signal: the
        same object is the same signal)."""
        last = self.last
        signal, score, conviction, triggered = outputs
        old = last[0]
        if old is signal or (id(old) not in self.made and old == signal and type(old) is type(signal)):
            signal = UNCHANGED
        else:
            last[0] = signal
        old = last[1]
        if old == score and type(old) is type(score):
            score = UNCHANGED
        else:
            last[1] = score
        old = last[2]
        if old == conviction and type(old) is type(conviction):
            conviction = UNCHANGED
        else:
            last[2] = conviction
        old = last[3]
        if old == triggered and type(old) is type(triggered):
            triggered = UNCHANGED
        else:
            last[3] = triggered
        if signal is UNCHANGED and score is UNCHANGED and conviction is UNCHANGED and triggered is UNCHANGED:
            return UNCHANGED
        return signal, score, conviction, triggered
