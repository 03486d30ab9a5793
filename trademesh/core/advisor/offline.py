"""`trademesh advisor train` and `trademesh advisor calibrate`: the offline library
(trademesh.core.advisor.training, calibrating, samples) on the recorder's bars.

- train: the bars of one venue, symbol and timeframe since a time; a walk-forward trained
  model written as a versioned artifact into the model directory (`<version>.model.pkl`,
  `.model.json` with the hash, the source of the bars and the training report, `.model.md`);
  the advisor serves it by version (`--model VERSION`, GetModel).
- calibrate: detector-like signals replayed through stages 3-5 on those bars (trademesh.core.advisor.
  samples), Platt and isotonic fitted per regime on the earlier 70%, scored on the rest;
  written as `<name>.calibration.json` (the advisor's `--calibration`), `.reliability.json`,
  `.reliability.md` (the table, also printed) and `.reliability.png` (the diagram).

Bad input (a time, a venue with no bars, too few bars) is one line naming it (exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.features import LOOKBACK
from trademesh.core.advisor.library import ModelLibrary, serving_model
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, Unavailable

if TYPE_CHECKING:
    from trademesh.core.advisor.training import TrainedModel

__all__ = [
    "BarColumns",
    "BarsRequest",
    "CalibrateRequest",
    "TrainRequest",
    "load_bars",
    "run_calibrate",
    "run_train",
]

_NS = 1_000_000_000
_CONNECT_TIMEOUT_S = 10.0
_QUERY_TIMEOUT_S = 120.0
# Fewest samples a calibration is fitted on (per regime, the fitter wants 200; below that the
# fallback alone is fitted).
MIN_CALIBRATION_SAMPLES = 50

_BARS = """
SELECT open_time_ns, high, low, close, volume FROM bars
WHERE venue = $1 AND symbol = $2 AND timeframe = $3 AND open_time_ns >= $4 AND open_time_ns < $5
ORDER BY open_time_ns
"""


def _one_blas_thread() -> AbstractContextManager[object]:
    """The fits' BLAS on one thread: their problems are thousands of rows by a dozen features,
    where OpenBLAS's threads only spin waiting for work (a training took 2.5 s of CPU with two
    threads, 1.8 s with one, no longer, and made the same model)."""
    limits: AbstractContextManager[object] = threadpool_limits(limits=1)
    return limits


@dataclass(frozen=True)
class BarColumns:
    """Bars as float columns, oldest first (what training and the samples take)."""

    open_time_ns: npt.NDArray[np.int64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.close)


async def load_bars(
    database_url: str, venue: str, symbol: str, timeframe: Timeframe, since_ns: int, until_ns: int
) -> BarColumns:
    try:
        conn = await asyncpg.connect(database_url, timeout=_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"PostgreSQL at {redact_url(database_url)} is unavailable ({exc})") from exc
    try:
        rows = await conn.fetch(
            _BARS, venue, symbol, timeframe.label, since_ns, until_ns, timeout=_QUERY_TIMEOUT_S
        )
    except asyncpg.UndefinedTableError as exc:
        raise FailedPrecondition("the database has no bars table: run `trademesh recorder` first") from exc
    finally:
        await conn.close()
    column = np.asarray
    return BarColumns(
        column([r["open_time_ns"] for r in rows], dtype=np.int64),
        column([float(r["high"]) for r in rows], dtype=np.float64),
        column([float(r["low"]) for r in rows], dtype=np.float64),
        column([float(r["close"]) for r in rows], dtype=np.float64),
        column([float(r["volume"]) for r in rows], dtype=np.float64),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / _NS, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class BarsRequest:
    """An offline job's recorded bars (a venue's symbol at one timeframe, since to until) and the
    folder it writes to."""

    database_url: str
    venue: str
    symbol: str
    timeframe: Timeframe
    since_ns: int
    until_ns: int
    out: Path

    def source(self) -> str:
        window = f"{_iso(self.since_ns)} to {_iso(self.until_ns)}"
        return f"{self.venue} {self.symbol} {self.timeframe.label} bars {window}"

    async def bars(self) -> BarColumns:
        return await load_bars(
            self.database_url, self.venue, self.symbol, self.timeframe, self.since_ns, self.until_ns
        )


@dataclass(frozen=True)
class TrainRequest(BarsRequest):
    horizon: int = 5
    folds: int = 5


def _enough(bars: BarColumns, request: BarsRequest, needed: int) -> None:
    if len(bars) < needed:
        raise InvalidArgument.field(
            "since",
            f"{len(bars)} recorded {request.timeframe.label} bars of {request.venue} {request.symbol} since "
            f"{_iso(request.since_ns)}; at least {needed} are needed (an earlier --since, or another "
            "--timeframe)",
        )


def _model_markdown(trained: TrainedModel, request: TrainRequest) -> str:
    r = trained.report
    mean = r["walk_forward"]["mean"]
    rows = [
        f"| {i + 1} | {int(f['train_samples'])} | {int(f['samples'])} | {f['auc']} | {f['brier']} | "
        f"{f['brier_baseline']} | {f['accuracy']} |"
        for i, f in enumerate(r["walk_forward"]["folds"])
    ]
    return "\n".join(
        [
            f"# Model {trained.artifact.version}",
            "",
            f"- sha256: `{trained.artifact.sha256}`",
            f"- trained on: {request.source()} ({r['samples']} samples)",
            f"- label: {r['label']}; estimator: {r['estimator']}",
            f"- walk-forward mean: AUC {mean['auc']}, Brier {mean['brier']} vs {mean['brier_baseline']} "
            f"for the base rate, accuracy {mean['accuracy']}",
            "",
            "| fold | train | test | AUC | Brier | base-rate Brier | accuracy |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "## What it can and cannot predict",
            "",
            *[f"- {s}" for s in r["statements"]],
            "",
        ]
    )


async def run_train(request: TrainRequest) -> list[str]:
    """Train and write the artifact; the lines to print."""
    bars = await request.bars()
    _enough(bars, request, LOOKBACK + (request.folds + 1) * (request.horizon + 2) * 2)
    # Here, not at the top: scikit-learn's import is a second or two, which bad input never waits for.
    from trademesh.core.advisor.training import train_model

    name = _slug(f"{request.venue}-{request.symbol}-{request.timeframe.label}")
    try:
        with _one_blas_thread():
            trained = train_model(
                bars, name=name, timeframe=request.timeframe.label, trained_on=request.source(),
                horizon=request.horizon, folds=request.folds,
            )  # fmt: skip
    except ValueError as exc:  # one class only, too few samples for the folds
        raise InvalidArgument.field("since", f"cannot train on {request.source()}: {exc}") from None
    meta = json.loads(trained.saved.meta_json)
    last = int(bars.open_time_ns[-1]) + request.timeframe.ns
    meta.update(
        venue=request.venue, symbol=request.symbol, since_ns=request.since_ns,
        until_ns=min(request.until_ns, last), trained_at_ns=time.time_ns(),
    )  # fmt: skip
    request.out.mkdir(parents=True, exist_ok=True)
    version = trained.artifact.version
    (request.out / f"{version}.model.pkl").write_bytes(trained.saved.model_bytes)
    (request.out / f"{version}.model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (request.out / f"{version}.model.md").write_text(_model_markdown(trained, request))
    mean = trained.report["walk_forward"]["mean"]
    return [
        f"model {version} (sha256 {trained.artifact.sha256[:12]}...) from {len(bars)} bars",
        f"walk-forward AUC {mean['auc']}, Brier {mean['brier']} vs {mean['brier_baseline']} (base rate)",
        *trained.report["statements"],
        f"wrote {request.out / version}.model.pkl, .model.json, .model.md; serve it with "
        f"`trademesh advisor --model {version} --model-dir {request.out}`",
    ]


@dataclass(frozen=True)
class CalibrateRequest(BarsRequest):
    model: str | None = None
    model_dir: Path | None = None
    name: str = ""


async def run_calibrate(request: CalibrateRequest) -> list[str]:
    """Fit the calibration and write it with its reliability report; the lines to print."""
    # The bars' timeframe picks the shipped default; a model of another timeframe is refused.
    model = serving_model(ModelLibrary(request.model_dir), request.model, request.timeframe.label)
    bars = await request.bars()
    _enough(bars, request, LOOKBACK + 10)
    # Here, not at the top: as in run_train.
    from trademesh.core.advisor.calibrating import fit_calibration, reliability_png, report_markdown
    from trademesh.core.advisor.samples import conviction_samples

    samples = conviction_samples(bars, model, AdvisorConfig(), timeframe=request.timeframe)
    if len(samples) < MIN_CALIBRATION_SAMPLES:
        raise InvalidArgument.field(
            "since",
            f"{len(samples)} calibration samples from {len(bars)} bars; at least {MIN_CALIBRATION_SAMPLES} "
            "are needed (an earlier --since)",
        )
    name = request.name or _slug(f"{request.venue}-{request.symbol}-{request.timeframe.label}")
    with _one_blas_thread():
        calibration, report = fit_calibration(samples, version=f"{name}-cal.{model.sha256[:12]}")
    request.out.mkdir(parents=True, exist_ok=True)
    stem = request.out / name
    data = json.loads(calibration.to_json())
    data.update(fitted_at_ns=time.time_ns(), model_version=model.version, samples=len(samples))
    stem.with_name(f"{name}.calibration.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    stem.with_name(f"{name}.reliability.json").write_text(
        json.dumps(report.to_dict(), indent=1, sort_keys=True) + "\n"
    )
    table = report_markdown(report)
    stem.with_name(f"{name}.reliability.md").write_text(table)
    png = reliability_png(report)
    written = [f"{name}.calibration.json", f"{name}.reliability.json", f"{name}.reliability.md"]
    if png is not None:
        stem.with_name(f"{name}.reliability.png").write_bytes(png)
        written.append(f"{name}.reliability.png")
    overall = report.overall
    return [
        table.rstrip(),
        "",
        f"calibration {calibration.version}: {len(samples)} samples, {len(bars)} bars, model {model.version}",
        f"held out: Brier {overall.brier_raw} -> {overall.brier_after}, ECE {overall.ece_before} -> "
        f"{overall.ece_after}",
        f"wrote {', '.join(written)} in {request.out}; serve it with "
        f"`trademesh advisor --calibration {stem}.calibration.json`",
    ]
