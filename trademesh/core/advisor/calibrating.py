"""Offline calibration: per market regime, Platt (logistic on the logit of the raw conviction)
and isotonic regression are fitted with scikit-learn on the earlier part of the samples and
scored on the later, held-out part; the one with the lower held-out Brier score is chosen
(identity instead when neither beats the raw conviction there, so calibration never makes a
regime worse on held-out data). Regimes with fewer than `min_samples` samples use the
fallback, fitted the same way on every regime's samples together, and so does `unknown` (a
market still warming up: no calibrator is fitted for it, its samples are in the fallback's).

The reliability report holds, per regime and overall (held-out samples only): the Brier score
and the expected calibration error (ECE) before and after, and a reliability table (per bin of
predicted probability: count, mean prediction, observed frequency). `reliability_png` draws
the overall diagram (matplotlib, Agg backend).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trademesh.core.advisor.engine.calibration import Calibration, CalibrationMethod, Calibrator, logit
from trademesh.core.advisor.engine.regime import UNKNOWN

__all__ = [
    "CalibrationSample",
    "RegimeReport",
    "ReliabilityBin",
    "ReliabilityReport",
    "brier",
    "expected_calibration_error",
    "fit_calibration",
    "fit_calibrator",
    "reliability_png",
    "reliability_table",
    "report_markdown",
]

Floats = npt.NDArray[np.float64]
FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class CalibrationSample:
    regime: str
    raw: float  # the raw conviction
    outcome: int  # 1 when the signal's direction was right


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_predicted: float
    observed: float


@dataclass(frozen=True)
class RegimeReport:
    key: str  # a regime, "fallback" or "overall"
    fit_samples: int
    holdout_samples: int
    brier_raw: float
    brier_platt: float | None
    brier_isotonic: float | None
    chosen: str
    brier_after: float
    ece_before: float
    ece_after: float
    before: tuple[ReliabilityBin, ...]
    after: tuple[ReliabilityBin, ...]


@dataclass(frozen=True)
class ReliabilityReport:
    version: str
    bins: int
    regimes: tuple[RegimeReport, ...]
    overall: RegimeReport

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def brier(p: Floats, y: Floats) -> float:
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def reliability_table(p: Floats, y: Floats, bins: int) -> tuple[ReliabilityBin, ...]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        mean_p = float(p[mask].mean()) if count else float("nan")
        observed = float(y[mask].mean()) if count else float("nan")
        table.append(ReliabilityBin(round(float(edges[b]), 6), round(float(edges[b + 1]), 6), count,
                                    round(mean_p, 6), round(observed, 6)))  # fmt: skip
    return tuple(table)


def expected_calibration_error(p: Floats, y: Floats, bins: int) -> float:
    table = reliability_table(p, y, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return float("nan")
    return sum(b.count / total * abs(b.mean_predicted - b.observed) for b in table if b.count)


# scikit-learn is imported by the fits that use it, not with the module: its import is 2 CPU s,
# which every pytest worker paid to collect these modules' tests (issue 61).


def _platt(raw: Floats, y: Floats) -> Calibrator:
    from sklearn.linear_model import LogisticRegression

    z = np.asarray([logit(float(v)) for v in raw]).reshape(-1, 1)
    model = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
    return Calibrator(CalibrationMethod.PLATT, a=float(model.coef_[0][0]), b=float(model.intercept_[0]))


def _isotonic(raw: Floats, y: Floats) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
    xs = tuple(float(v) for v in model.X_thresholds_)
    ys = tuple(float(v) for v in model.y_thresholds_)
    return Calibrator(CalibrationMethod.ISOTONIC, xs=xs, ys=ys)


def _apply(calibrator: Calibrator, raw: Floats) -> Floats:
    return np.asarray([calibrator.apply(float(v)) for v in raw], dtype=np.float64)


def _split(
    samples: Sequence[CalibrationSample], holdout_fraction: float
) -> tuple[Floats, Floats, Floats, Floats]:
    raw = np.asarray([s.raw for s in samples], dtype=np.float64)
    y = np.asarray([s.outcome for s in samples], dtype=np.float64)
    cut = len(samples) - max(1, math.ceil(len(samples) * holdout_fraction))
    return raw[:cut], y[:cut], raw[cut:], y[cut:]


def fit_calibrator(
    samples: Sequence[CalibrationSample], key: str, holdout_fraction: float, bins: int
) -> tuple[Calibrator, RegimeReport]:
    """Platt and isotonic on the earlier samples; the better on the held-out later ones."""
    raw_fit, y_fit, raw_out, y_out = _split(samples, holdout_fraction)
    both_classes = len(set(y_fit.tolist())) == 2
    candidates: dict[str, Calibrator] = {"identity": Calibrator(CalibrationMethod.IDENTITY)}
    if both_classes:
        candidates["platt"] = _platt(raw_fit, y_fit)
        candidates["isotonic"] = _isotonic(raw_fit, y_fit)
    scores = {name: brier(_apply(c, raw_out), y_out) for name, c in candidates.items()}
    fitted = [n for n in ("platt", "isotonic") if n in scores]
    best = min(fitted, key=lambda n: scores[n]) if fitted else "identity"
    if scores[best] >= scores["identity"]:
        best = "identity"
    after = _apply(candidates[best], raw_out)
    report = RegimeReport(
        key, len(raw_fit), len(raw_out), round(scores["identity"], 6),
        _rounded(scores.get("platt")), _rounded(scores.get("isotonic")), best, round(scores[best], 6),
        round(expected_calibration_error(raw_out, y_out, bins), 6),
        round(expected_calibration_error(after, y_out, bins), 6),
        reliability_table(raw_out, y_out, bins), reliability_table(after, y_out, bins),
    )  # fmt: skip
    return candidates[best], report


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def fit_calibration(
    samples: Sequence[CalibrationSample],
    *,
    version: str,
    holdout_fraction: float = 0.3,
    min_samples: int = 200,
    bins: int = 10,
) -> tuple[Calibration, ReliabilityReport]:
    """Samples in time order; the calibration artifact and its reliability report."""
    if not 0 < holdout_fraction < 1:
        raise ValueError("holdout_fraction must be in (0, 1)")
    fallback, fallback_report = fit_calibrator(samples, FALLBACK, holdout_fraction, bins)
    by_regime, reports = {}, [fallback_report]
    for regime in sorted({s.regime for s in samples} - {UNKNOWN}):
        own = [s for s in samples if s.regime == regime]
        if len(own) < min_samples:
            continue
        by_regime[regime], report = fit_calibrator(own, regime, holdout_fraction, bins)
        reports.append(report)
    calibration = Calibration(version, by_regime, fallback)
    return calibration, ReliabilityReport(
        version, bins, tuple(reports), _overall(samples, calibration, holdout_fraction, bins)
    )


def _overall(
    samples: Sequence[CalibrationSample], cal: Calibration, holdout: float, bins: int
) -> RegimeReport:
    """Every regime's held-out samples, through the calibration as the core applies it."""
    raw_out, y_out, after, fit_n = [], [], [], 0
    for regime in sorted({s.regime for s in samples}):
        own = [s for s in samples if s.regime == regime]
        cut = len(own) - max(1, math.ceil(len(own) * holdout))
        fit_n += cut
        _, calibrator = cal.calibrator(regime)
        for s in own[cut:]:
            raw_out.append(s.raw)
            y_out.append(s.outcome)
            after.append(calibrator.apply(s.raw))
    r, y, a = (np.asarray(v, dtype=np.float64) for v in (raw_out, y_out, after))
    return RegimeReport(
        "overall", fit_n, len(r), round(brier(r, y), 6), None, None, "per regime", round(brier(a, y), 6),
        round(expected_calibration_error(r, y, bins), 6), round(expected_calibration_error(a, y, bins), 6),
        reliability_table(r, y, bins), reliability_table(a, y, bins),
    )  # fmt: skip


def report_markdown(report: ReliabilityReport) -> str:
    lines = [
        f"# Calibration {report.version}",
        "",
        "| calibrator | fit | held out | Brier raw | Platt | isotonic | chosen | Brier after "
        "| ECE before | ECE after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (*report.regimes, report.overall):
        lines.append(
            f"| {r.key} | {r.fit_samples} | {r.holdout_samples} | {r.brier_raw} | {_cell(r.brier_platt)} | "
            f"{_cell(r.brier_isotonic)} | {r.chosen} | {r.brier_after} | {r.ece_before} | {r.ece_after} |"
        )
    lines += [
        "",
        "Overall reliability (held-out samples; before binned by the raw value, after by the calibrated):",
        "",
        "| bin | n | predicted | observed | n after | predicted after | observed after |",
        "|---|---|---|---|---|---|---|",
    ]
    for before, after in zip(report.overall.before, report.overall.after, strict=True):
        lines.append(
            f"| {before.low:.1f}-{before.high:.1f} | {before.count} | {_cell(before.mean_predicted)} | "
            f"{_cell(before.observed)} | {after.count} | {_cell(after.mean_predicted)} | "
            f"{_cell(after.observed)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value}"


def reliability_png(report: ReliabilityReport) -> bytes | None:
    """The overall reliability diagram as PNG bytes; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return None
    overall = report.overall
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for label, table, brier_value, ece in (
        ("raw", overall.before, overall.brier_raw, overall.ece_before),
        ("calibrated", overall.after, overall.brier_after, overall.ece_after),
    ):
        points = [(b.mean_predicted, b.observed) for b in table if b.count]
        ax.plot(
            *zip(*points, strict=True), marker="o", label=f"{label}: Brier {brier_value:.4f}, ECE {ece:.4f}"
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed frequency")
    ax.set_title(f"Reliability, held-out samples ({overall.holdout_samples})\ncalibration {report.version}")
    ax.legend(loc="upper left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
