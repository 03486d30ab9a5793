"""Stage 5b, calibration: the raw conviction mapped to a probability that the signal's
direction is right, by the calibrator fitted for the market regime.

The artifact is plain numbers (JSON), fitted offline with scikit-learn
(trademesh.core.advisor.calibrating) and applied here in plain Python, so a decision never depends on a
library's version:

- platt: p = 1 / (1 + exp(-(a * logit(x) + b))), x clipped to [1e-6, 1 - 1e-6]
  (on the logit, a = 1 and b = 0 is the identity);
- isotonic: the fitted step points (xs, ys), linearly interpolated, flat beyond both ends
  (what scikit-learn's IsotonicRegression predicts with out_of_bounds="clip");
- identity: no change (no calibration fitted, or none beat the raw value on held-out data).

A regime with no calibrator of its own uses the fallback (fitted on every regime together), and
so does `unknown` (a market whose classifier is still warming up), whatever the artifact holds.
The regimes are Overwatch's classifier's (trademesh.core.advisor.engine.regime); an artifact fitted before
(keyed by the advisor's old labels, `up.calm` ...) still loads, and its fallback serves every
decision.
"""

from __future__ import annotations

import bisect
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from trademesh.core.advisor.engine.regime import UNKNOWN
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.core.platform.parsing import loads_json

__all__ = ["Calibration", "CalibrationMethod", "CalibrationResult", "Calibrator", "calibrate"]

_EPS = 1e-6


class CalibrationMethod(enum.Enum):
    IDENTITY = "identity"
    PLATT = "platt"
    ISOTONIC = "isotonic"


def logit(x: float) -> float:
    x = min(1.0 - _EPS, max(_EPS, x))
    return math.log(x / (1.0 - x))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class Calibrator:
    method: CalibrationMethod
    a: float = 1.0
    b: float = 0.0
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method is CalibrationMethod.ISOTONIC and (not self.xs or len(self.xs) != len(self.ys)):
            raise ValueError("an isotonic calibrator needs as many ys as xs, at least one")

    def apply(self, x: float) -> float:
        if self.method is CalibrationMethod.PLATT:
            return _sigmoid(self.a * logit(x) + self.b)
        if self.method is CalibrationMethod.ISOTONIC:
            return self._interpolate(x)
        return x

    def _interpolate(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            return ys[0]
        if x >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, x)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method.value}
        if self.method is CalibrationMethod.PLATT:
            out.update(a=self.a, b=self.b)
        elif self.method is CalibrationMethod.ISOTONIC:
            out.update(xs=list(self.xs), ys=list(self.ys))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Calibrator:
        method = CalibrationMethod(data["method"])
        if method is CalibrationMethod.PLATT:
            return cls(method, a=_float(data["a"]), b=_float(data["b"]))
        if method is CalibrationMethod.ISOTONIC:
            return cls(method, xs=_floats(data["xs"]), ys=_floats(data["ys"]))
        return cls(method)


IDENTITY = Calibrator(CalibrationMethod.IDENTITY)


def _float(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _floats(value: object) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return tuple(_float(v) for v in value)


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    regime: str
    key: str  # the calibrator used: the regime's own, or "fallback"
    method: CalibrationMethod
    raw: float
    calibrated: float


@dataclass(frozen=True)
class Calibration:
    version: str
    by_regime: Mapping[str, Calibrator] = field(default_factory=dict)
    fallback: Calibrator = IDENTITY

    @classmethod
    def identity(cls) -> Calibration:
        return cls("identity")

    def calibrator(self, regime: str) -> tuple[str, Calibrator]:
        own = None if regime == UNKNOWN else self.by_regime.get(regime)
        return ("fallback", self.fallback) if own is None else (regime, own)

    def to_json(self) -> str:
        data = {
            "version": self.version,
            "by_regime": {k: c.to_dict() for k, c in sorted(self.by_regime.items())},
            "fallback": self.fallback.to_dict(),
        }
        return json.dumps(data, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            data = loads_json(text, "calibration")  # an operator's file: its nesting bounded
            by_regime = {str(k): Calibrator.from_dict(v) for k, v in data["by_regime"].items()}
            return cls(str(data["version"]), by_regime, Calibrator.from_dict(data["fallback"]))
        except (InvalidArgument, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Corrupt(f"calibration artifact: {exc}") from exc


def calibrate(calibration: Calibration, regime: str, raw: float) -> CalibrationResult:
    key, calibrator = calibration.calibrator(regime)
    value = min(1.0, max(0.0, calibrator.apply(raw)))
    return CalibrationResult(regime, key, calibrator.method, raw, round(value, 9))
