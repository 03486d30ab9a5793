// The candlestick chart (lightweight-charts). It draws what a CandleSeries holds; the series'
// size, last close and last time are also written to data attributes, so tests and tools can
// read what the chart shows without reading pixels. Signals are drawn over it (SignalMarkers), and
// price levels (a position's stop-loss and take-profit) across it (PriceLines).
import {
  CandlestickSeries,
  ColorType,
  createChart,
  type CandlestickData,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { forDrawing } from "../lib/decimal";
import type { CandlePoint, CandleSeries, Change } from "../market/candles";
import { h } from "./dom";
import { type PriceLevel, PriceLines } from "./price-lines";
import { SignalMarkers } from "./signal-markers";

/** Studio's chart look (colours of the page, times to the second): every chart's base options. */
export const CHART_THEME = {
  autoSize: true,
  layout: { background: { type: ColorType.Solid, color: "#11151c" }, textColor: "#c9d1d9" },
  grid: { vertLines: { color: "#1d2430" }, horzLines: { color: "#1d2430" } },
  timeScale: { timeVisible: true, secondsVisible: true },
} as const;

// The live chart is drawn at most 10 times a second.
const DRAW_EVERY_MS = 100;

function drawable(point: CandlePoint): CandlestickData<UTCTimestamp> {
  return {
    time: point.time as UTCTimestamp,
    open: forDrawing(point.open),
    high: forDrawing(point.high),
    low: forDrawing(point.low),
    close: forDrawing(point.close),
  };
}

export class CandleChart {
  readonly root: HTMLElement;
  private readonly chart: IChartApi;
  private readonly series: ISeriesApi<"Candlestick">;
  private readonly markers: SignalMarkers;
  private readonly lines: PriceLines;
  private lastDrawn = -Infinity;
  // The changes asked for since the last drawing, drawn together at most every DRAW_EVERY_MS: a
  // busy market's trades move the last candle many times a second, each a repaint of the canvas.
  private readonly pending = new Map<number, CandlePoint>();
  private pendingReset = false;
  private pendingCandles: CandleSeries | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `id`: the element's id ("chart", the market view's). */
  constructor(id = "chart") {
    this.root = h("div", { id, class: "chart", "data-candles": 0 });
    this.chart = createChart(this.root, CHART_THEME);
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: "#26a69a",
      downColor: "#ef5350",
      borderVisible: false,
      wickUpColor: "#26a69a",
      wickDownColor: "#ef5350",
    });
    this.markers = new SignalMarkers(this.chart, this.series, this.root);
    this.root.append(this.markers.root);
    this.lines = new PriceLines(this.series, this.root);
  }

  /** Price levels across the chart (replacing the previous ones); none clears them. */
  levels(levels: readonly PriceLevel[]): void {
    this.lines.show(levels);
  }

  /** The signals of the shown venue and symbol, drawn at their candles. */
  signals(signals: readonly Signal[]): void {
    this.markers.show(signals);
  }

  /** Draws the whole series again (a new symbol or timeframe, or history loaded), now. */
  reset(candles: CandleSeries): void {
    this.dropPending();
    this.setData(candles);
    this.chart.timeScale().scrollToRealTime();
    this.mark(candles);
  }

  /** Draws one change of the series, with the others of the next DRAW_EVERY_MS. (Not held while a
   * pointer is pressed, unlike dom.throttled: the chart goes on under a pressed ladder level.) */
  apply(change: Change, candles: CandleSeries): void {
    if (change.kind === "none") return;
    if (change.kind === "reset") this.pendingReset = true;
    else this.pending.set(change.point.time, change.point);
    this.pendingCandles = candles;
    this.timer ??= setTimeout(() => this.drawPending(), DRAW_EVERY_MS);
  }

  private drawPending(): void {
    const candles = this.pendingCandles;
    const reset = this.pendingReset;
    const points = [...this.pending.values()].sort((a, b) => a.time - b.time);
    this.dropPending();
    if (candles === null) return;
    if (reset) this.setData(candles);
    else {
      // Oldest first. The chart appends after its last candle or replaces one it has.
      for (const point of points) {
        this.series.update(drawable(point), point.time < this.lastDrawn);
        this.lastDrawn = Math.max(this.lastDrawn, point.time);
      }
    }
    this.mark(candles);
  }

  private dropPending(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    this.pendingReset = false;
    this.pendingCandles = null;
  }

  private setData(candles: CandleSeries): void {
    this.series.setData(candles.list().map(drawable));
    this.lastDrawn = candles.last()?.time ?? -Infinity;
  }

  private mark(candles: CandleSeries): void {
    const last = candles.last();
    this.root.dataset.candles = String(candles.size);
    this.root.dataset.lastClose = last?.close ?? "";
    this.root.dataset.lastTime = last === undefined ? "" : String(last.time);
    this.markers.redraw(candles);
  }

  /** The price precision of the instrument (decimals of its tick size), for the price axis. */
  setTick(tickSize: string): void {
    const decimals = tickSize.includes(".") ? tickSize.split(".")[1]?.replace(/0+$/, "").length ?? 0 : 0;
    this.series.applyOptions({
      priceFormat: { type: "price", precision: decimals, minMove: forDrawing(tickSize) || 0.01 },
    });
  }
}
