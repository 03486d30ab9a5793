// The equity curves of GetPnl on one chart (lightweight-charts, Studio's chart look): a line per
// strategy and a thicker one for the total, each the cumulative realised PnL + fees + funding
// over time, with a legend naming each line with its colour and its last value. The lines drawn
// and their points are written to data attributes, so tests can read what the chart shows.
import { type IChartApi, type ISeriesApi, LineSeries, type UTCTimestamp, createChart } from "lightweight-charts";
import type { GetPnlResponse, StrategyPnl } from "../gen/trademesh/ledger/v1/ledger_pb";
import { forDrawing } from "../lib/decimal";
import { amount } from "../lib/money";
import { CHART_THEME } from "../ui/chart";
import { fill, h } from "../ui/dom";
import { curvePoints, sign, strategyName } from "./books";

const TOTAL = "total";
const TOTAL_COLOUR = "#e6edf3";
const COLOURS = ["#4493f8", "#26a69a", "#d29922", "#ab7df8", "#f0883e", "#ef5350", "#3fb9a3", "#db61a2"];

interface Line {
  series: ISeriesApi<"Line">;
  colour: string;
}

export class EquityChart {
  readonly root: HTMLElement;
  private readonly plot = h("div", { id: "equity-chart", class: "chart equity", "data-series": 0 });
  private readonly legend = h("ul", { id: "equity-legend", class: "legend" });
  private readonly chart: IChartApi;
  private readonly lines = new Map<string, Line>();
  private drawnKey = "";
  // Colours given so far: a strategy keeps its colour while shown.
  private assigned = 0;

  constructor() {
    this.root = h("div", { class: "equity-chart" }, this.legend, this.plot);
    this.chart = createChart(this.plot, CHART_THEME);
  }

  /** Draws the curves of `reply`: a line per strategy, and the total's. */
  show(reply: GetPnlResponse): void {
    const curves: [string, StrategyPnl][] = reply.strategies.map((s) => [s.strategyId, s]);
    if (reply.total !== undefined) curves.push([TOTAL, reply.total]);
    const wanted = new Set(curves.map(([key]) => key));
    for (const [key, line] of this.lines) {
      if (wanted.has(key)) continue;
      this.chart.removeSeries(line.series);
      this.lines.delete(key);
    }
    const items: HTMLElement[] = [];
    let points = 0;
    for (const [key, pnl] of curves) {
      const line = this.line(key);
      const data = curvePoints(pnl.curve);
      line.series.setData(data.map((p) => ({ time: p.time as UTCTimestamp, value: forDrawing(p.pnl) })));
      points += data.length;
      const last = data[data.length - 1]?.pnl ?? "";
      const name = key === TOTAL ? "total" : strategyName(key);
      items.push(
        h(
          "li",
          { "data-strategy": key === TOTAL ? "" : key, "data-line": key, "data-points": data.length, "data-last": last },
          h("span", { class: "swatch", style: `background: ${line.colour}` }),
          h("span", {}, name),
          h("span", { class: `num ${sign(last)}` }, last === "" ? "–" : amount(last, pnl.asset, true)),
        ),
      );
    }
    fill(this.legend, ...items);
    this.plot.dataset.series = String(this.lines.size);
    this.plot.dataset.points = String(points);
    // The view fits the curves when their set changes; after that the reader's zoom stays.
    const key = [...wanted].sort().join("|");
    if (key !== this.drawnKey && points > 0) {
      this.drawnKey = key;
      this.chart.timeScale().fitContent();
    }
  }

  private line(key: string): Line {
    const known = this.lines.get(key);
    if (known !== undefined) return known;
    const total = key === TOTAL;
    const colour = total ? TOTAL_COLOUR : (COLOURS[this.assigned++ % COLOURS.length] ?? TOTAL_COLOUR);
    const series = this.chart.addSeries(LineSeries, {
      color: colour,
      lineWidth: total ? 3 : 2,
      title: total ? "total" : strategyName(key),
      priceLineVisible: false,
    });
    const line = { series, colour };
    this.lines.set(key, line);
    return line;
  }
}
