// OHLCV candles of the venue's own trades, in ticks and lots, for live updates and GetCandles.
// Closed candles are kept at 1s (six hours) and 1m (a week); longer timeframes are built from
// the 1m ones on demand, and the open candle of the asked timeframe comes last when in range.

import type { Candle, Timeframe } from "./model.js";
import { openTimeNs, TIMEFRAMES } from "./model.js";
import type { Scale } from "./exchange.js";
import { Dec } from "./decimal.js";

const KEEP_S1 = 6 * 3600;
const KEEP_M1 = 7 * 24 * 60;
const NS = 1_000_000_000n;

export class IntCandle {
  lots = 0n;
  notional = 0n; // price ticks * lots
  trades = 0;

  constructor(
    readonly openTimeNs: bigint,
    readonly open: bigint,
    public high: bigint,
    public low: bigint,
    public close: bigint,
  ) {}

  add(price: bigint, lots: bigint): void {
    this.high = price > this.high ? price : this.high;
    this.low = price < this.low ? price : this.low;
    this.close = price;
    this.lots += lots;
    this.notional += price * lots;
    this.trades += 1;
  }

  merge(other: IntCandle): void {
    this.high = other.high > this.high ? other.high : this.high;
    this.low = other.low < this.low ? other.low : this.low;
    this.close = other.close;
    this.lots += other.lots;
    this.notional += other.notional;
    this.trades += other.trades;
  }
}

export type OnClose = (timeframe: Timeframe, candle: IntCandle) => void;

// A bounded queue of closed candles, oldest first.
class Kept {
  private items: IntCandle[] = [];

  constructor(private readonly most: number) {}

  push(candle: IntCandle): void {
    this.items.push(candle);
    if (this.items.length > this.most * 1.25) {
      this.items = this.items.slice(this.items.length - this.most);
    }
  }

  inRange(startNs: bigint, endNs: bigint): IntCandle[] {
    return this.items.filter((c) => c.openTimeNs >= startNs && c.openTimeNs < endNs).slice(-this.most);
  }
}

export class CandleBook {
  private readonly open = new Map<Timeframe, IntCandle>();
  private readonly closed = new Map<Timeframe, Kept>([
    [1, new Kept(KEEP_S1)],
    [60, new Kept(KEEP_M1)],
  ]);

  constructor(
    private readonly price: Scale,
    private readonly size: Scale,
  ) {}

  addTrade(tsNs: bigint, price: bigint, lots: bigint, onClose: OnClose): void {
    for (const timeframe of TIMEFRAMES) {
      const start = openTimeNs(timeframe, tsNs);
      const current = this.open.get(timeframe);
      if (current !== undefined && current.openTimeNs === start) {
        current.add(price, lots);
        continue;
      }
      if (current !== undefined) {
        this.close(timeframe, current, onClose);
      }
      const fresh = new IntCandle(start, price, price, price, price);
      fresh.add(price, lots);
      this.open.set(timeframe, fresh);
    }
  }

  openCandles(): Array<[Timeframe, IntCandle]> {
    return [...this.open.entries()];
  }

  // Closes the candles whose interval has ended, even when no trade came after them.
  roll(nowNs: bigint, onClose: OnClose): void {
    for (const [timeframe, current] of [...this.open.entries()]) {
      if (current.openTimeNs + BigInt(timeframe) * NS <= nowNs) {
        this.close(timeframe, current, onClose);
        this.open.delete(timeframe);
      }
    }
  }

  history(timeframe: Timeframe, startNs: bigint, endNs: bigint, limit: number): Candle[] {
    const source: Timeframe = timeframe === 1 ? 1 : 60;
    const kept = this.closed.get(source)!.inRange(startNs, endNs);
    const merged = timeframe === source ? kept : regroup(kept, timeframe);
    let done = merged.map((c) => this.toCandle(timeframe, c, true));
    const current = this.open.get(timeframe);
    if (current !== undefined && current.openTimeNs >= startNs && current.openTimeNs < endNs) {
      done = done.filter((c) => c.openTimeNs !== current.openTimeNs);
      done.push(this.toCandle(timeframe, current, false));
    }
    return done.slice(0, limit);
  }

  toCandle(timeframe: Timeframe, candle: IntCandle, closed: boolean): Candle {
    const price = (ticks: bigint): Dec => this.price.value(ticks);
    return {
      timeframe,
      openTimeNs: candle.openTimeNs,
      open: price(candle.open),
      high: price(candle.high),
      low: price(candle.low),
      close: price(candle.close),
      volume: this.size.value(candle.lots),
      quoteVolume: this.price.step.mul(this.size.step).mul(Dec.int(candle.notional)),
      tradeCount: candle.trades,
      closed,
    };
  }

  private close(timeframe: Timeframe, candle: IntCandle, onClose: OnClose): void {
    this.closed.get(timeframe)?.push(candle);
    onClose(timeframe, candle);
  }
}

function regroup(candles: readonly IntCandle[], timeframe: Timeframe): IntCandle[] {
  const out: IntCandle[] = [];
  for (const candle of candles) {
    const start = openTimeNs(timeframe, candle.openTimeNs);
    const group = out[out.length - 1];
    if (group !== undefined && group.openTimeNs === start) {
      group.merge(candle);
      continue;
    }
    const fresh = new IntCandle(start, candle.open, candle.high, candle.low, candle.close);
    fresh.merge(candle);
    out.push(fresh);
  }
  return out;
}
