// Equity curves of backtest runs on one chart (lightweight-charts, Studio's chart look): a line
// per curve over the top pane, and under it, in its own pane, how far below its running peak
// each main curve is (the drawdown, in %). A run's result draws the account's curve ("total",
// main) and each strategy's; the comparison draws each run's account curve. Main curves beside
// others (the account beside its strategies, worth many times each) take the left price scale,
// the others the right one. A legend names each line with its colour and last value; the lines
// and their points are written to data attributes, so tests can read what the chart shows.
import {
  AreaSeries,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type SeriesType,
  type UTCTimestamp,
  createChart,
} from "lightweight-charts";
import type { EquityPoint } from "../gen/trademesh/backtest/v1/backtest_pb";
import { forDrawing } from "../lib/decimal";
import { amount } from "../lib/money";
import { CHART_THEME } from "../ui/chart";
import { fill, h } from "../ui/dom";
import { tone } from "./figures";

const NS_PER_S = 1_000_000_000n;
const DRAWDOWN_PANE_PX = 110;
export const COLOURS = ["#e6edf3", "#4493f8", "#26a69a", "#d29922", "#ab7df8", "#f0883e", "#3fb9a3", "#db61a2"];

/** One line of the chart. */
export interface CurveLine {
  /** Its key in the data attributes ("total", a strategy, a run id). */
  key: string;
  label: string;
  points: readonly EquityPoint[];
  /** The account's line is drawn thicker; its drawdown is drawn. */
  main: boolean;
  /** Extra data attributes of its legend item (data-run-id, data-strategy). */
  attrs?: Record<string, string>;
}

interface Drawable {
  time: UTCTimestamp;
  equity: string;
  drawdown: string;
}

/** A curve on the chart's time scale: one point per second (the last of each), in time order. */
export function drawable(points: readonly EquityPoint[]): Drawable[] {
  const out: Drawable[] = [];
  const sorted = [...points].sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
  for (const point of sorted) {
    const time = Number(point.tsNs / NS_PER_S) as UTCTimestamp;
    const last = out[out.length - 1];
    if (last !== undefined && last.time === time) {
      last.equity = point.equity;
      last.drawdown = point.drawdown;
    } else out.push({ time, equity: point.equity, drawdown: point.drawdown });
  }
  return out;
}

export class CurveChart {
  readonly root: HTMLElement;
  private readonly plot: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly chart: IChartApi;
  private series: ISeriesApi<SeriesType>[] = [];

  /** `id`: the plot's element id; the legend's is `${id}-legend`. */
  constructor(id: string) {
    this.plot = h("div", { id, class: "chart curves", "data-series": 0, "data-points": 0 });
    this.legend = h("ul", { id: `${id}-legend`, class: "legend" });
    this.root = h("div", { class: "equity-chart" }, this.legend, this.plot);
    this.chart = createChart(this.plot, CHART_THEME);
  }

  /** Draws `lines` (replacing what was drawn). */
  show(lines: readonly CurveLine[]): void {
    for (const series of this.series) this.chart.removeSeries(series);
    this.series = [];
    const mixed = lines.some((l) => l.main) && lines.some((l) => !l.main);
    this.chart.applyOptions({ leftPriceScale: { visible: mixed } });
    const items: HTMLElement[] = [];
    let points = 0;
    let drawdowns = 0;
    lines.forEach((line, index) => {
      const colour = COLOURS[index % COLOURS.length] ?? COLOURS[0];
      const data = drawable(line.points);
      const equity = this.chart.addSeries(LineSeries, {
        color: colour,
        lineWidth: line.main ? 3 : 2,
        title: line.label,
        priceLineVisible: false,
        priceScaleId: mixed && line.main ? "left" : "right",
      });
      equity.setData(data.map((p) => ({ time: p.time, value: forDrawing(p.equity) })));
      this.series.push(equity);
      points += data.length;
      if (line.main && data.length > 0) {
        const drawdown = this.chart.addSeries(
          AreaSeries,
          {
            lineColor: colour,
            topColor: "rgba(239, 83, 80, 0.05)",
            bottomColor: "rgba(239, 83, 80, 0.4)",
            lineWidth: 1,
            title: `${line.label} drawdown %`,
            priceLineVisible: false,
            invertFilledArea: true,
          },
          1,
        );
        drawdown.setData(data.map((p) => ({ time: p.time, value: -100 * (forDrawing(p.drawdown) || 0) })));
        this.series.push(drawdown);
        drawdowns += data.length;
      }
      const last = data[data.length - 1]?.equity ?? "";
      items.push(
        h(
          "li",
          { ...line.attrs, "data-line": line.key, "data-points": data.length, "data-last": last },
          h("span", { class: "swatch", style: `background: ${colour}` }),
          h("span", {}, line.label),
          h("span", { class: `num ${tone(last)}` }, last === "" ? "–" : amount(last)),
        ),
      );
    });
    this.chart.panes()[1]?.setHeight(DRAWDOWN_PANE_PX);
    fill(this.legend, ...items);
    this.plot.dataset.series = String(lines.length);
    this.plot.dataset.points = String(points);
    this.plot.dataset.drawdownPoints = String(drawdowns);
    if (points > 0) this.chart.timeScale().fitContent();
  }
}
