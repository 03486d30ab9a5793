// A run's trades on the price chart of one of its symbols: the venue's candles over the run's
// range (the timeframe that fits it in at most a thousand candles), each fill a marker at its
// price, buy ▲ under it, sell ▼ over it, with the strategy, side, size and price as its text.
// When the venue has no candles of that range, the fills' own prices draw the line. What is
// drawn is written to data attributes (the symbol, candles, fills), so tests can read it.
import {
  CandlestickSeries,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  LineSeries,
  type SeriesMarker,
  type SeriesType,
  type Time,
  type UTCTimestamp,
  createChart,
  createSeriesMarkers,
} from "lightweight-charts";
import { type Clients, unary } from "../api/clients";
import type { BacktestOptions, Fill } from "../gen/trademesh/backtest/v1/backtest_pb";
import type { Candle } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { forDrawing } from "../lib/decimal";
import { intervalStart, TIMEFRAMES, type TimeframeOption } from "../market/timeframes";
import { CHART_THEME } from "../ui/chart";
import { fill, h } from "../ui/dom";

const NS_PER_S = 1_000_000_000n;
const MAX_CANDLES = 1000;
const LABELLED = 8;

/** The shortest timeframe that shows [startNs, endNs) in at most MAX_CANDLES candles. */
export function timeframeFor(startNs: bigint, endNs: bigint): TimeframeOption {
  const seconds = Number((endNs - startNs) / NS_PER_S);
  const fits = TIMEFRAMES.find((t) => seconds / t.seconds <= MAX_CANDLES);
  return fits ?? TIMEFRAMES[TIMEFRAMES.length - 1]!;
}

// The candle a fill falls in: intervals counted from the first candle's open (a week's opens on
// a Monday, not on a multiple of its length).
function bucket(tsNs: bigint, intervalS: number, originS = 0): UTCTimestamp {
  return intervalStart(Number(tsNs / NS_PER_S), intervalS, originS) as UTCTimestamp;
}

export class TradesChart {
  readonly root: HTMLElement;
  readonly symbol = h("select", { id: "backtest-trades-symbol", "aria-label": "symbol" });
  private readonly plot = h("div", { id: "backtest-trades-chart", class: "chart trades", "data-fills": 0 });
  private readonly note = h("p", { id: "backtest-trades-note", class: "who" });
  private readonly chart: IChartApi;
  private series: ISeriesApi<SeriesType> | null = null;
  private markers: ISeriesMarkersPluginApi<Time> | null = null;
  private options: BacktestOptions | undefined;
  private fills: readonly Fill[] = [];
  // The newest drawing asked for: an older one's candles arriving late are dropped.
  private drawing = 0;

  constructor(
    private readonly clients: Clients,
    private readonly signal: () => AbortSignal | undefined,
  ) {
    this.root = h(
      "div",
      { class: "trades-chart" },
      h("div", { class: "controls" }, h("label", {}, "Symbol ", this.symbol), this.note),
      this.plot,
    );
    this.chart = createChart(this.plot, CHART_THEME);
    this.symbol.addEventListener("change", () => void this.draw());
  }

  /** A run's fills over its range, of its symbols (`defaults`, its strategies' own, when its
   * options name none): the symbols to pick from, the first drawn. */
  async show(options: BacktestOptions | undefined, fills: readonly Fill[], defaults: readonly string[]): Promise<void> {
    this.options = options;
    this.fills = fills;
    const named = options === undefined || options.symbols.length === 0 ? defaults : options.symbols;
    const symbols = [...new Set([...fills.map((f) => f.symbol), ...named])].sort();
    const chosen = symbols.includes(this.symbol.value) ? this.symbol.value : (symbols[0] ?? "");
    fill(this.symbol, ...symbols.map((s) => h("option", { value: s, selected: s === chosen }, s)));
    this.symbol.value = chosen;
    await this.draw();
  }

  private async draw(): Promise<void> {
    const drawing = ++this.drawing;
    const symbol = this.symbol.value;
    const fills = this.fills.filter((f) => f.symbol === symbol);
    const candles = await this.candles(symbol);
    if (drawing !== this.drawing) return;
    this.clear();
    this.plot.dataset.symbol = symbol;
    if (candles.length > 0) this.drawCandles(candles, fills);
    else this.drawFillPrices(fills);
    this.plot.dataset.fills = String(fills.length);
    this.note.textContent =
      symbol === "" ? "no trades" : `${fills.length} fill${fills.length === 1 ? "" : "s"} of ${symbol}`;
    this.chart.timeScale().fitContent();
  }

  /** The venue's candles of the run's range (none when it has none, or cannot be reached). */
  private async candles(symbol: string): Promise<Candle[]> {
    const options = this.options;
    const signal = this.signal();
    if (options === undefined || symbol === "" || signal === undefined) return [];
    const timeframe = timeframeFor(options.startNs, options.endNs);
    try {
      const reply = await this.clients.marketData.getCandles(
        { symbol, timeframe: timeframe.value, startNs: options.startNs, endNs: options.endNs, limit: MAX_CANDLES },
        unary(signal, options.venue || "sim"),
      );
      return reply.candles;
    } catch {
      return []; // the fills' prices draw the line instead
    }
  }

  private clear(): void {
    this.markers?.detach();
    this.markers = null;
    if (this.series !== null) this.chart.removeSeries(this.series);
    this.series = null;
  }

  private drawCandles(candles: readonly Candle[], fills: readonly Fill[]): void {
    const first = candles[0]!;
    const second = candles[1];
    const intervalS = second === undefined ? 1 : Math.max(1, Number((second.openTimeNs - first.openTimeNs) / NS_PER_S));
    const series = this.chart.addSeries(CandlestickSeries, {
      upColor: "#26a69a",
      downColor: "#ef5350",
      borderVisible: false,
      wickUpColor: "#26a69a",
      wickDownColor: "#ef5350",
    });
    const seen = new Set<number>();
    const data = [...candles]
      .sort((a, b) => (a.openTimeNs < b.openTimeNs ? -1 : 1))
      .map((c) => ({
        time: Number(c.openTimeNs / NS_PER_S) as UTCTimestamp,
        open: forDrawing(c.open),
        high: forDrawing(c.high),
        low: forDrawing(c.low),
        close: forDrawing(c.close),
      }))
      .filter((c) => !seen.has(c.time) && seen.add(c.time));
    series.setData(data);
    this.series = series;
    this.plot.dataset.source = "candles";
    this.plot.dataset.candles = String(data.length);
    const originS = Number(first.openTimeNs / NS_PER_S);
    this.mark(series, fills, (f) => bucket(f.tsNs, intervalS, originS));
  }

  private drawFillPrices(fills: readonly Fill[]): void {
    const series = this.chart.addSeries(LineSeries, { color: "#7d8590", lineWidth: 1, priceLineVisible: false });
    const byTime = new Map<number, number>();
    for (const f of fills) byTime.set(Number(f.tsNs / NS_PER_S), forDrawing(f.price));
    const data = [...byTime.entries()].sort(([a], [b]) => a - b);
    series.setData(data.map(([time, value]) => ({ time: time as UTCTimestamp, value })));
    this.series = series;
    this.plot.dataset.source = "fills";
    this.plot.dataset.candles = "0";
    this.mark(series, fills, (f) => bucket(f.tsNs, 1));
  }

  private mark(series: ISeriesApi<SeriesType>, fills: readonly Fill[], time: (f: Fill) => UTCTimestamp): void {
    const markers: SeriesMarker<Time>[] = [...fills]
      .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0))
      .map((f) => {
        const buy = f.side === "buy";
        return {
          time: time(f),
          position: buy ? "atPriceBottom" : "atPriceTop",
          price: forDrawing(f.price),
          shape: buy ? "arrowUp" : "arrowDown",
          color: buy ? "#26a69a" : "#ef5350",
          // Text on every marker only while they are few enough to read.
          text: fills.length <= LABELLED ? `${f.strategy} ${f.side} ${f.size} @ ${f.price}` : "",
        };
      });
    this.markers = createSeriesMarkers(series, markers);
  }
}
