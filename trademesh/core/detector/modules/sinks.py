"""Sink modules: what leaves a patch. A signal emitter turns a score into emitted signals; a
position request asks the trading side to open, close, reduce or flip a position."""

from __future__ import annotations

from trademesh.core.detector.engine.io import PositionDraft, SignalDraft, Sink
from trademesh.core.detector.engine.kernel import Kernel
from trademesh.core.detector.engine.module import Category, KernelModule, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import PortType, SignalValue, Value
from trademesh.core.detector.modules._common import Params
from trademesh.core.domain.contracts.signal import Direction

__all__ = ["PositionRequestSink", "SignalEmitter"]


def _place() -> tuple[Param, Param]:
    return (
        Param("venue", ParamKind.TEXT, "", "The venue; empty: the strategy's"),
        Param("symbol", ParamKind.TEXT, "", "The symbol; empty: the strategy's"),
    )


class _Placed(Sink, KernelModule):
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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        gated, every = "gate" in connected, self.params["on"] == "every"
        venue, symbol, pending = str(self.params["venue"]), str(self.params["symbol"]), self.pending

        def emit(signal: Value, gate: Value, fresh: bool) -> None:
            if not (fresh and isinstance(signal, SignalValue)):
                return
            triggered = signal.score >= signal.threshold
            rising = triggered and not self._was_triggered
            self._was_triggered = triggered
            if (not gated or gate is True) and (rising or (triggered and every)):
                pending.append(SignalDraft(venue, symbol, signal))

        return Kernel(emit, ("signal", "gate"), ("signal",))


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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        p, pending = self.params, self.pending
        draft = PositionDraft(
            str(p["venue"]), str(p["symbol"]), str(p["action"]), Direction(p["side"]), float(p["fraction"])
        )

        def request(trigger: Value) -> None:
            now = trigger is True
            if now and not self._was:
                pending.append(draft)
            self._was = now

        return Kernel(request, ("trigger",))
