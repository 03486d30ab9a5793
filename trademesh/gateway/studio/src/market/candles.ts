// The candles the chart shows for one symbol and timeframe: history from the venue, closed bars
// from the bar aggregator (they are final and replace their interval), and the open interval
// kept current from trades between bars. OHLC stay decimal strings; the chart draws numbers.
import { compareDecimal } from "../lib/decimal";
import { intervalStart } from "./timeframes";

export interface CandlePoint {
  /** Interval start, seconds since the Unix epoch (the chart's time unit). */
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  /** A closed bar: trades no longer change it. */
  closed: boolean;
}

/** How the chart must redraw after a change: one point (at the end or in place), or everything. */
export type Change = { kind: "none" } | { kind: "last" | "inplace"; point: CandlePoint } | { kind: "reset" };

const NS_PER_S = 1_000_000_000n;

export class CandleSeries {
  private readonly points = new Map<number, CandlePoint>();
  private lastTime = -Infinity;

  constructor(
    readonly intervalS: number,
    readonly offsetS = 0,
  ) {}

  /** The interval start (seconds) a nanosecond timestamp falls in. */
  bucket(tsNs: bigint): number {
    return intervalStart(Number(tsNs / NS_PER_S), this.intervalS, this.offsetS);
  }

  list(): CandlePoint[] {
    return [...this.points.values()].sort((a, b) => a.time - b.time);
  }

  /** The candle of the interval starting at `time` (seconds), if there is one. */
  at(time: number): CandlePoint | undefined {
    return this.points.get(time);
  }

  last(): CandlePoint | undefined {
    return this.points.get(this.lastTime);
  }

  get size(): number {
    return this.points.size;
  }

  /** Puts a final (or, with closed=false, provisional) candle in its interval. */
  put(point: CandlePoint): Change {
    const known = this.points.get(point.time);
    if (known?.closed && !point.closed) return { kind: "none" };
    return this.store(point);
  }

  /** A trade at tsNs and price: opens the interval, or moves its high, low and close. */
  trade(tsNs: bigint, price: string): Change {
    const time = this.bucket(tsNs);
    const known = this.points.get(time);
    if (known === undefined) {
      // A late trade for an interval before the newest one that we never saw: leave history alone.
      if (time < this.lastTime) return { kind: "none" };
      return this.store({ time, open: price, high: price, low: price, close: price, closed: false });
    }
    if (known.closed) return { kind: "none" };
    return this.store({
      ...known,
      high: compareDecimal(price, known.high) > 0 ? price : known.high,
      low: compareDecimal(price, known.low) < 0 ? price : known.low,
      close: price,
    });
  }

  private store(point: CandlePoint): Change {
    const existed = this.points.has(point.time);
    this.points.set(point.time, point);
    if (point.time > this.lastTime) {
      this.lastTime = point.time;
      return { kind: "last", point };
    }
    if (point.time === this.lastTime) return { kind: "last", point };
    return existed ? { kind: "inplace", point } : { kind: "reset" };
  }
}
