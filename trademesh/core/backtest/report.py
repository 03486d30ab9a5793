"""A backtest run's report: PNG charts and an HTML page that shows them, written to a directory.

`write_report(report, directory)` writes

- `equity.png`: the account's equity over time;
- `drawdown.png`: the drawdown from the running peak (trademesh.core.backtest.metrics.drawdowns);
- `trades-NN.png`, one per symbol (sorted; NN its position, so a symbol such as "BTC/USDT"
  never becomes a path): the symbol's market price over the run (its last trade at up to
  2,000 points: trademesh.core.backtest.prices) with a marker per fill (buy ^, sell v);
- `monthly.png`: the monthly returns (trademesh.core.backtest.metrics.monthly_returns) as a heatmap,
  a row per year and a column per month;
- `report.html`: the run's title and id, a table of the metrics (a column per strategy, in
  the report's order), the monthly returns as a table, the run's config (by key), and the PNGs by
  relative link, so the directory can be moved or served as it is.

Charts of a run without data (an empty curve, a symbol without prices) say so instead of
failing. Everything the page repeats from the report is escaped (html.escape).

The same RunReport gives byte-identical files: the figures are drawn with matplotlib's Agg
canvas on a `Figure` (no pyplot, no global backend), under matplotlib's default style (the
caller's rcParams do not leak in), and saved without the "Software" PNG text chunk (the
only metadata Agg writes; there is no timestamp).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trademesh.core.backtest.metrics import drawdowns, monthly_returns
from trademesh.core.backtest.results import FillRecord, Metrics, RunReport
from trademesh.core.domain.decimals import format_decimal

__all__ = ["DRAWDOWN_PNG", "EQUITY_PNG", "METRIC_ROWS", "MONTHLY_PNG", "REPORT_HTML", "write_report"]

EQUITY_PNG = "equity.png"
DRAWDOWN_PNG = "drawdown.png"
MONTHLY_PNG = "monthly.png"
REPORT_HTML = "report.html"
_DPI = 100
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# (Metrics field, label on the page), in the page's order.
METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("start_equity", "Start equity"),
    ("end_equity", "End equity"),
    ("total_return", "Total return"),
    ("cagr", "CAGR"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("max_drawdown", "Max drawdown"),
    ("calmar", "Calmar"),
    ("win_rate", "Win rate"),
    ("profit_factor", "Profit factor"),
    ("exposure", "Exposure"),
    ("turnover", "Turnover"),
    ("fees", "Fees"),
    ("trades", "Round trips"),
)
# Fields shown as percentages.
_PERCENT = frozenset({"total_return", "cagr", "max_drawdown", "win_rate", "exposure"})


def write_report(report: RunReport, directory: Path) -> Path:
    """Write the report's charts and page into `directory` (made if missing); the page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    with _style():
        _save(_equity_figure(report), directory / EQUITY_PNG)
        _save(_drawdown_figure(report), directory / DRAWDOWN_PNG)
        _save(_monthly_figure(report), directory / MONTHLY_PNG)
        symbols = _symbols(report)
        trade_pngs = [f"trades-{index:02d}.png" for index in range(1, len(symbols) + 1)]
        for symbol, name in zip(symbols, trade_pngs, strict=True):
            _save(_trades_figure(report, symbol), directory / name)
    page = directory / REPORT_HTML
    page.write_text(
        _page(report, list(zip(symbols, trade_pngs, strict=True))), encoding="utf-8", newline="\n"
    )
    return page


# --- figures ---------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(), matplotlib.style.context("default"):
        yield


def _figure(width: float = 10.0, height: float = 4.0) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=_DPI, metadata={"Software": None})


def _times(stamps: Sequence[int]) -> npt.NDArray[np.datetime64]:
    """Unix nanoseconds as numpy times (UTC), which matplotlib draws on a date axis."""
    return np.array(stamps, dtype="datetime64[ns]")


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _equity_figure(report: RunReport) -> Figure:
    figure = _figure()
    ax = figure.subplots()
    ax.set_title("Equity")
    if not report.curve:
        _no_data(ax, "no equity curve")
        return figure
    times = _times([p.ts_ns for p in report.curve])
    ax.step(times, [float(p.equity) for p in report.curve], where="post", color="tab:blue")
    ax.set_ylabel("equity (quote)")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)  # 2000770, not 770 under "+2e6"
    ax.grid(True, alpha=0.3)
    return figure


def _drawdown_figure(report: RunReport) -> Figure:
    figure = _figure(height=3.0)
    ax = figure.subplots()
    ax.set_title("Drawdown")
    if not report.curve:
        _no_data(ax, "no equity curve")
        return figure
    times = _times([p.ts_ns for p in report.curve])
    depth = [-100.0 * float(d) for d in drawdowns(report.curve)]
    ax.fill_between(times, depth, 0.0, step="post", color="tab:red", alpha=0.4)
    ax.step(times, depth, where="post", color="tab:red")
    ax.set_ylabel("% below peak")
    ax.grid(True, alpha=0.3)
    return figure


def _symbols(report: RunReport) -> list[str]:
    return sorted(set(report.prices) | {f.symbol for f in report.fills})


def _trades_figure(report: RunReport, symbol: str) -> Figure:
    figure = _figure()
    ax = figure.subplots()
    ax.set_title(f"{symbol}: price and fills")
    line = report.prices.get(symbol, ())
    fills = [f for f in report.fills if f.symbol == symbol]
    if not line and not fills:
        _no_data(ax, "no prices or fills")
        return figure
    if line:
        ax.plot(_times([t for t, _ in line]), [float(p) for _, p in line], color="grey", lw=1, label="price")
    for side, marker, colour in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
        chosen: list[FillRecord] = [f for f in fills if f.side == side]
        if chosen:
            ax.scatter(
                _times([f.ts_ns for f in chosen]),
                [float(f.price) for f in chosen],
                marker=marker,
                color=colour,
                s=40,
                zorder=3,
                label=f"{side} ({len(chosen)})",
            )
    ax.set_ylabel("price")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return figure


def _monthly_figure(report: RunReport) -> Figure:
    months = monthly_returns(report.curve)
    years = sorted({year for year, _ in months})
    figure = _figure(height=max(2.0, 1.0 + 0.5 * len(years)))
    ax = figure.subplots()
    ax.set_title("Monthly returns (%)")
    if not months:
        _no_data(ax, "no equity curve")
        return figure
    grid = [[math.nan] * 12 for _ in years]
    for (year, month), value in months.items():
        grid[years.index(year)][month - 1] = 100.0 * float(value)
    bound = max((abs(v) for row in grid for v in row if not math.isnan(v)), default=0.0) or 1.0
    ax.imshow(grid, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    for row, year in enumerate(years):
        for column in range(12):
            if (year, column + 1) in months:
                percent = grid[row][column]
                ink = "white" if abs(percent) > 0.6 * bound else "black"  # readable on the dark ends
                ax.text(column, row, f"{percent:.1f}", ha="center", va="center", fontsize=8, color=ink)
    ax.set_xticks(range(12), _MONTHS)
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    return figure


# --- page ------------------------------------------------------------------------------------

_STYLE = """body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { display: block; max-width: 100%; margin-bottom: 1em; }"""


def _page(report: RunReport, trade_pngs: Sequence[tuple[str, str]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(report.title)}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(report.title)}</h1>",
        f"<p>Run <code>{_e(report.run_id)}</code></p>",
        "<h2>Metrics</h2>",
        _metrics_table(report.metrics),
        "<h2>Equity</h2>",
        _img(EQUITY_PNG, "equity curve"),
        _img(DRAWDOWN_PNG, "drawdown curve"),
        "<h2>Monthly returns</h2>",
        _img(MONTHLY_PNG, "monthly returns"),
        _monthly_table(monthly_returns(report.curve)),
        "<h2>Trades</h2>",
    ]
    for symbol, name in trade_pngs:
        parts += [f"<h3>{_e(symbol)}</h3>", _img(name, f"{symbol} price and fills")]
    parts += ["<h2>Config</h2>", _config_table(report.config), "</body>", "</html>", ""]
    return "\n".join(parts)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _img(name: str, alt: str) -> str:
    return f'<img src="{_e(name)}" alt="{_e(alt)}">'


def _metrics_table(metrics: Mapping[str, Metrics]) -> str:
    names = list(metrics)
    rows = ["<table>", "<tr><th>metric</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"]
    for field, label in METRIC_ROWS:
        cells = "".join(f"<td>{_e(_cell(field, getattr(metrics[n], field)))}</td>" for n in names)
        rows.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _cell(field: str, value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if field in _PERCENT and isinstance(value, Decimal | float):
        return f"{100 * float(value):.2f} %"
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _monthly_table(months: Mapping[tuple[int, int], Decimal]) -> str:
    if not months:
        return "<p>No equity curve.</p>"
    rows = ["<table>", "<tr><th>year</th>" + "".join(f"<th>{m}</th>" for m in _MONTHS) + "</tr>"]
    for year in sorted({y for y, _ in months}):
        cells = "".join(
            f"<td>{100 * float(months[year, m]):.2f} %</td>" if (year, m) in months else "<td></td>"
            for m in range(1, 13)
        )
        rows.append(f"<tr><td>{year}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _config_table(config: Mapping[str, str]) -> str:
    rows = ["<table>", "<tr><th>key</th><th>value</th></tr>"]
    rows += [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sorted(config.items())]
    rows.append("</table>")
    return "\n".join(rows)
