"""Sink modules: what leaves a patch. A signal emitter turns a score into emitted signals; a
position request asks the trading side to open, close, reduce or flip a position."""

from __future__ import annotations

from core.detector.engine.io import PositionDraft, SignalDraft, Sink
from core.detector.engine.module import Category, Inputs, ModuleSpec, Outputs, Param, ParamKind, Port
from core.detector.engine.values import Direction, PortType, SignalValue
from core.detector.modules._common import Params

__all__ = ["PositionRequestSink", "SignalEmitter"]


def _place() -> tuple[Param, Param]:
    return (
        Param("venue", ParamKind.TEXT, "", "The venue; empty: the strategy's"),
        Param("symbol", ParamKind.TEXT, "", "The symbol; empty: the strategy's"),
    )


class _Placed(Sink):
    def unready(self) -> str | None:
        missing = [name for name in ("venue", "symbol") if not self.params[name]]
        return f"{' and '.join(missing)} not set" if missing else None

    def retune(self, params: Params) -> bool:
        self.params = dict(params)
        return True


class SignalEmitter(_Placed):
    spec = ModuleSpec(
        type="signal",
        category=Category.SINK,
        description=(
            "Emits the signal when its score reaches its threshold: on `rise`, once each time it "
            "gets there; on `every`, at every new value there. A gate, when connected, must be true."
        ),
        inputs=(
            Port("signal", PortType.SIGNAL),
            Port("gate", PortType.BOOLEAN, "Emit only while true", optional=True),
        ),
        params=(*_place(), Param("on", ParamKind.CHOICE, "rise", "When to emit", choices=("rise", "every"))),
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._was_triggered = False

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        signal = inputs["signal"]
        if not (inputs.is_fresh("signal") and isinstance(signal, SignalValue)):
            return {}
        triggered = signal.score >= signal.threshold
        rising = triggered and not self._was_triggered
        self._was_triggered = triggered
        gate_open = not inputs.connected("gate") or inputs["gate"] is True
        if gate_open and (rising or (triggered and self.params["on"] == "every")):
            self.pending.append(SignalDraft(str(self.params["venue"]), str(self.params["symbol"]), signal))
        return {}


class PositionRequestSink(_Placed):
    spec = ModuleSpec(
        type="position",
        category=Category.SINK,
        description="Requests a position change each time `trigger` turns true.",
        inputs=(Port("trigger", PortType.BOOLEAN),),
        params=(
            *_place(),
            Param(
                "action", ParamKind.CHOICE, "open", "What to do", choices=("open", "close", "reduce", "flip")
            ),
            Param("side", ParamKind.CHOICE, "long", "The position's side", choices=("long", "short")),
            Param(
                "fraction", ParamKind.FLOAT, 1.0, "Of the allowed size (open) or of the position", 0.0001, 1.0
            ),
        ),
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._was = False

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        now = inputs["trigger"] is True
        if now and not self._was:
            p = self.params
            self.pending.append(
                PositionDraft(
                    str(p["venue"]),
                    str(p["symbol"]),
                    str(p["action"]),
                    Direction(p["side"]),
                    float(p["fraction"]),
                )
            )
        self._was = now
        return {}
