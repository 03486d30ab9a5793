// Signals on the candlestick chart: an arrow per signal at its candle (up under the low for
// long, down over the high for short, a dot for flat), larger and more opaque the higher its
// conviction, and on hover a tooltip with the strategy and each rule (name, weight, value,
// fired); a click opens the signal's trace (ledger/trace). Markers are DOM elements over the
// chart, placed with the chart's own coordinate conversions and placed again whenever the chart
// scrolls, zooms, resizes or redraws.
import type { IChartApi, ISeriesApi, UTCTimestamp } from "lightweight-charts";
import { Direction, type Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { forDrawing } from "../lib/decimal";
import { clockTime, label } from "../lib/format";
import type { CandleSeries } from "../market/candles";
import { fill, h, table, throttled } from "./dom";

const GAP_PX = 6;
const STACK_GAP_PX = 2;

function conviction(signal: Signal): number {
  const value = Number(signal.conviction);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

/** A marker's size (its font size, line-height 1): 12 px at no conviction, 24 px at full. */
function markerPx(signal: Signal): number {
  return Math.round(12 + 12 * conviction(signal));
}

function glyph(direction: Direction): string {
  return direction === Direction.LONG ? "▲" : direction === Direction.SHORT ? "▼" : "●";
}

function tooltipBody(signal: Signal): HTMLElement[] {
  const rules = h(
    "tbody",
    {},
    ...signal.rules.map((rule) =>
      h(
        "tr",
        { "data-rule": rule.name, "data-fired": String(rule.fired) },
        h("td", {}, rule.name),
        h("td", { class: "num" }, rule.weight),
        h("td", { class: "num" }, rule.value || "–"),
        h("td", { class: rule.fired ? "buy" : "empty" }, rule.fired ? "fired" : "no"),
      ),
    ),
  );
  const head = `${signal.strategyId} · ${label(Direction, signal.direction)} · conviction ${signal.conviction}`;
  const score = `score ${signal.score} / threshold ${signal.threshold}`;
  const detail = `${score} · ${clockTime(signal.tsSignalNs)} · version ${signal.patchVersion}`;
  const columns = ["rule", "weight", "value", "fired"];
  return [h("strong", {}, head), h("div", { class: "detail" }, detail), table(columns, rules)];
}

export class SignalMarkers {
  readonly root = h("div", { class: "signal-layer" });
  // A class, not an id: a page may hold more than one chart (the Risk page charts a position).
  private readonly tooltip = h("div", { class: "signal-tooltip", hidden: true });
  private signals: Signal[] = [];
  private readonly markers = new Map<string, HTMLElement>();
  // Where each marker was last placed (x|y|below).
  private readonly placed = new WeakMap<HTMLElement, string>();
  private candles: CandleSeries | null = null;
  private hostWidth = 0;
  private readonly place = throttled(() => this.draw());

  constructor(
    private readonly chart: IChartApi,
    private readonly series: ISeriesApi<"Candlestick">,
    private readonly host: HTMLElement,
  ) {
    this.root.append(this.tooltip);
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1]?.borderBoxSize[0];
      this.hostWidth = box === undefined ? this.host.clientWidth : box.inlineSize;
      this.place();
    }).observe(host);
    chart.timeScale().subscribeVisibleLogicalRangeChange(() => this.place());
    chart.timeScale().subscribeSizeChange(() => this.place());
  }

  /** The signals of the shown venue and symbol (any order). */
  show(signals: readonly Signal[]): void {
    const key = (list: readonly Signal[]): string => list.map((s) => s.signalId).join();
    if (key(signals) === key(this.signals)) return;
    this.signals = [...signals].sort((a, b) => (a.tsSignalNs < b.tsSignalNs ? -1 : 1));
    this.place();
  }

  /** The candles drawn changed: markers follow their candles. */
  redraw(candles: CandleSeries): void {
    this.candles = candles;
    this.place();
  }

  private draw(): void {
    const candles = this.candles;
    const shown = new Set<string>();
    const stacked = new Map<string, number>();
    // The host's width as its resize observer last saw it: its clientWidth, read after the page's
    // other panels changed in the frame, laid the page out again at every drawing.
    const width = this.hostWidth;
    for (const signal of candles === null ? [] : this.signals) {
      const time = candles!.bucket(signal.tsSignalNs);
      const candle = candles!.at(time);
      const x = this.chart.timeScale().timeToCoordinate(time as UTCTimestamp);
      if (candle === undefined || x === null || x < 0 || x > width) continue;
      const long = signal.direction !== Direction.SHORT;
      const y = this.series.priceToCoordinate(forDrawing(long ? candle.low : candle.high));
      if (y === null) continue;
      // Markers of one candle and side stack outward, each past the whole height of the ones
      // before it (a marker's size follows its conviction), so none covers another.
      const key = `${time}|${long}`;
      const offset = stacked.get(key) ?? 0;
      stacked.set(key, offset + markerPx(signal) + STACK_GAP_PX);
      const at = long ? y + GAP_PX + offset : y - GAP_PX - offset;
      this.position(this.marker(signal), x, at, long);
      shown.add(signal.signalId);
    }
    // Markers are kept (not made again) while shown, so one under the pointer stays hovered.
    for (const [id, marker] of this.markers) {
      if (shown.has(id)) continue;
      marker.remove();
      this.markers.delete(id);
      if (this.tooltip.dataset.signalId === id) this.tooltip.hidden = true;
    }
    if (this.host.dataset.signals !== String(shown.size)) this.host.dataset.signals = String(shown.size);
  }

  private marker(signal: Signal): HTMLElement {
    const known = this.markers.get(signal.signalId);
    if (known !== undefined) return known;
    const c = conviction(signal);
    const direction = label(Direction, signal.direction);
    const marker = h(
      "div",
      {
        class: `signal-marker ${direction}`,
        tabindex: 0,
        "data-signal-id": signal.signalId,
        // A click opens the signal's trace (ledger/trace): what became of it.
        "data-trace-id": signal.signalId,
        "data-direction": direction,
        "data-strategy": signal.strategyId,
        "data-conviction": signal.conviction,
      },
      glyph(signal.direction),
    );
    marker.style.fontSize = `${markerPx(signal)}px`;
    marker.style.opacity = (0.45 + 0.55 * c).toFixed(2);
    const open = (): void => this.open(signal, marker);
    marker.addEventListener("mouseenter", open);
    marker.addEventListener("focus", open);
    marker.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
    marker.addEventListener("blur", () => (this.tooltip.hidden = true));
    this.markers.set(signal.signalId, marker);
    this.root.insertBefore(marker, this.tooltip);
    return marker;
  }

  /** Moves a marker; one already there is not written to (each write restyles the layer). */
  private position(marker: HTMLElement, x: number, y: number, below: boolean): void {
    const at = `${x}|${y}|${below}`;
    if (this.placed.get(marker) === at) return;
    this.placed.set(marker, at);
    marker.style.left = `${x}px`;
    marker.style.top = `${y}px`;
    marker.style.transform = `translate(-50%, ${below ? "0" : "-100%"})`;
  }

  private open(signal: Signal, marker: HTMLElement): void {
    const x = parseFloat(marker.style.left) || 0;
    const y = parseFloat(marker.style.top) || 0;
    fill(this.tooltip, ...tooltipBody(signal));
    this.tooltip.dataset.signalId = signal.signalId;
    const left = Math.min(x + 12, Math.max(0, this.host.clientWidth - 320));
    this.tooltip.style.left = `${left}px`;
    // Over the marker in the chart's lower half, under it in the upper: always inside the chart.
    const low = y > this.host.clientHeight / 2;
    this.tooltip.style.top = `${low ? y - 12 : y + 24}px`;
    this.tooltip.style.transform = low ? "translateY(-100%)" : "";
    this.tooltip.hidden = false;
  }
}
