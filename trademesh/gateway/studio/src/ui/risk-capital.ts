// Capital efficiency on the Risk page: per strategy, the capital reserved for it by policy
// (capital.reserved), in use now, and suppressed (entries refused by the reservation, summed),
// with its utilisation (used / reserved; near the limit from 80%), as a table; and the selected
// strategy's three over time on a chart, with its utilisation on the left scale, from the
// samples the page keeps of its GetRiskState poll (risk/capital). A row selects its strategy.
import { type IChartApi, type ISeriesApi, LineSeries, type UTCTimestamp, createChart } from "lightweight-charts";
import type { CapitalUse, GetRiskStateResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { forDrawing } from "../lib/decimal";
import { amount } from "../lib/money";
import { CapitalHistory, type CapitalSample, utilisation } from "../risk/capital";
import { nearLimit, percent } from "../risk/gauges";
import { CHART_THEME } from "./chart";
import { fill, h, table } from "./dom";

const COLUMNS = ["strategy", "reserved", "used", "utilisation", "suppressed"];
// Up to this many samples the chart is fitted to them at each draw.
const FIT_SAMPLES = 60;
type Part = "reserved" | "used" | "suppressed" | "utilisation";
const LINES: readonly { part: Part; colour: string; title: string }[] = [
  { part: "reserved", colour: "#8b949e", title: "reserved" },
  { part: "used", colour: "#4493f8", title: "used" },
  { part: "suppressed", colour: "#ef5350", title: "suppressed" },
  { part: "utilisation", colour: "#d29922", title: "utilisation %" },
];

function value(sample: CapitalSample, part: Part): number | null {
  if (part === "utilisation") {
    const fraction = utilisation(sample);
    return fraction === null ? null : fraction * 100;
  }
  const text = sample[part];
  return text === "" ? null : forDrawing(text);
}

export class RiskCapital {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "risk-capital" });
  private readonly title = h("h3", { id: "risk-capital-title" }, "Select a strategy");
  private readonly plot = h("div", { id: "risk-capital-chart", class: "chart capital", "data-points": 0 });
  private readonly chart: IChartApi;
  private readonly series = new Map<Part, ISeriesApi<"Line">>();
  private readonly history = new CapitalHistory();
  private selected: string | null = null;
  private fitted = "";

  constructor() {
    this.root = h(
      "div",
      { class: "risk-capital" },
      table(COLUMNS, this.body),
      h("p", { class: "who" }, "Kept while this tab is open, one sample a second (an hour at most)."),
      this.title,
      this.plot,
    );
    this.chart = createChart(this.plot, { ...CHART_THEME, leftPriceScale: { visible: true } });
    for (const line of LINES) {
      const options = { color: line.colour, lineWidth: 2 as const, title: line.title, priceLineVisible: false };
      const scale = line.part === "utilisation" ? { priceScaleId: "left" } : {};
      this.series.set(line.part, this.chart.addSeries(LineSeries, { ...options, ...scale }));
    }
    this.draw();
  }

  /** Takes a GetRiskState answer: its capital rows as the table and as the chart's next point. */
  show(reply: GetRiskStateResponse): void {
    this.history.take(reply);
    this.draw();
  }

  private select(strategy: string): void {
    this.selected = strategy;
    this.draw();
  }

  private row(use: CapitalUse): HTMLElement {
    const fraction = utilisation(use);
    const near = nearLimit(fraction);
    const row = h(
      "tr",
      {
        class: `selectable${near ? " near-limit" : ""}`,
        "data-strategy": use.strategyId,
        "data-reserved": use.reserved,
        "data-used": use.used,
        "data-suppressed": use.suppressed,
        "data-utilisation": fraction === null ? "" : String(fraction),
        "data-near": near,
        "aria-selected": String(use.strategyId === this.selected),
      },
      h("td", {}, use.strategyId),
      h("td", { class: "num", "data-col": "reserved" }, use.reserved === "" ? "none" : amount(use.reserved)),
      h("td", { class: "num", "data-col": "used" }, amount(use.used)),
      h("td", { class: "num", "data-col": "utilisation" }, fraction === null ? "–" : percent(fraction)),
      h("td", { class: "num", "data-col": "suppressed" }, amount(use.suppressed)),
    );
    row.addEventListener("click", () => this.select(use.strategyId));
    return row;
  }

  private draw(): void {
    const current = this.history.current();
    // The first strategy with a reservation is selected until the user picks one.
    if (this.selected === null || !current.some((u) => u.strategyId === this.selected)) {
      this.selected = (current.find((u) => u.reserved !== "") ?? current[0])?.strategyId ?? this.selected;
    }
    if (current.length === 0) {
      const text = "no strategy with orders or a reservation";
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, text)));
    } else fill(this.body, ...current.map((use) => this.row(use)));
    this.drawChart();
  }

  private drawChart(): void {
    const strategy = this.selected;
    const samples = strategy === null ? [] : this.history.of(strategy);
    this.title.textContent = strategy === null ? "Select a strategy" : `Capital of ${strategy} over time`;
    for (const line of LINES) {
      const points = samples.flatMap((s) => {
        const v = value(s, line.part);
        return v === null ? [] : [{ time: s.time as UTCTimestamp, value: v }];
      });
      this.series.get(line.part)?.setData(points);
    }
    this.plot.dataset.strategy = strategy ?? "";
    this.plot.dataset.points = String(samples.length);
    // Fitted to the samples while they are few, and when another strategy is shown; after that
    // the reader's zoom stays.
    if (strategy !== null && (strategy !== this.fitted || samples.length <= FIT_SAMPLES) && samples.length > 1) {
      this.fitted = strategy;
      this.chart.timeScale().fitContent();
    }
  }
}
