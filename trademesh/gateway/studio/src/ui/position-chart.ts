// The Risk page's chart: the candles of the selected position's venue and symbol (the venue's
// history, polled) with the position's entry, stop-loss and take-profit drawn across it.
import { type Clients, unary } from "../api/clients";
import type { PositionView } from "../gen/trademesh/risk/v1/inspector_pb";
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";
import { CandleSeries } from "../market/candles";
import { CandleChart } from "./chart";
import { h } from "./dom";
import type { PriceLevel } from "./price-lines";

const INTERVAL_S = 60;
const HISTORY_CANDLES = 180n;
const NS_PER_S = 1_000_000_000n;

/** The levels of a position: its average entry, and the stop-loss and take-profit (the planned
 * levels, else its protective orders' prices). */
export function positionLevels(position: PositionView): PriceLevel[] {
  const protective = (role: string): string => position.protective.find((o) => o.role === role)?.price ?? "";
  return [
    { role: "entry", price: position.averagePrice },
    { role: "stop_loss", price: position.stopLoss || protective("stop_loss") },
    { role: "take_profit", price: position.takeProfit || protective("take_profit") },
  ];
}

export class PositionChart {
  readonly root: HTMLElement;
  private readonly chart = new CandleChart("risk-chart");
  private readonly title = h("h3", { id: "risk-chart-title" }, "Select a position");
  private shown = ""; // "venue|symbol" of the candles drawn
  private candles = new CandleSeries(INTERVAL_S);
  private position: PositionView | null = null;

  constructor(private readonly clients: Clients) {
    this.root = h("div", { class: "position-chart" }, this.title, this.chart.root);
  }

  get selected(): PositionView | null {
    return this.position;
  }

  /** Shows `position` (its levels now, its candles at the next refresh), or nothing. */
  show(position: PositionView | null): void {
    this.position = position;
    this.chart.root.dataset.position = position === null ? "" : `${position.venue} ${position.symbol}`;
    this.title.textContent =
      position === null ? "Select a position" : `${position.venue} ${position.symbol} · ${position.size}`;
    this.chart.levels(position === null ? [] : positionLevels(position));
  }

  /** The candles of the selected position's market, drawn again (a poll's task). */
  async refresh(signal: AbortSignal): Promise<void> {
    const position = this.position;
    if (position === null) return;
    const startNs = BigInt(Date.now()) * 1_000_000n - HISTORY_CANDLES * BigInt(INTERVAL_S) * NS_PER_S;
    const reply = await this.clients.marketData.getCandles(
      { symbol: position.symbol, timeframe: Timeframe.TIMEFRAME_1_MINUTE, startNs, endNs: 0n, limit: 0 },
      unary(signal, position.venue),
    );
    const key = `${position.venue}|${position.symbol}`;
    const fresh = key !== this.shown;
    if (fresh) this.candles = new CandleSeries(INTERVAL_S);
    const changes = reply.candles.map((c) =>
      this.candles.put({
        time: Number(c.openTimeNs / NS_PER_S),
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        closed: c.closed,
      }),
    );
    if (fresh) {
      this.shown = key;
      this.chart.reset(this.candles);
    } else for (const change of changes) this.chart.apply(change, this.candles);
  }
}
