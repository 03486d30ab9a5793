// One symbol's L2 book rebuilt from the bridge's snapshot and deltas. Prices stay strings: the
// map key is the price's canonical spelling (so "65000.50" and "65000.5" are one level), the
// level keeps the venue's text, and levels are ordered with an exact decimal compare.
import type { BookLevel } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { canonical, compareDecimal, isZero } from "../lib/decimal";

export interface Level {
  price: string;
  size: string;
}

type Side = Map<string, Level>;

function apply(side: Side, levels: readonly BookLevel[]): void {
  for (const level of levels) {
    const key = canonical(level.price);
    if (isZero(level.size)) side.delete(key);
    else side.set(key, { price: level.price, size: level.size });
  }
}

function best(side: Side, depth: number, descending: boolean): Level[] {
  const levels = [...side.values()];
  levels.sort((a, b) => (descending ? compareDecimal(b.price, a.price) : compareDecimal(a.price, b.price)));
  return levels.slice(0, depth);
}

export class OrderBook {
  private readonly bids: Side = new Map();
  private readonly asks: Side = new Map();
  sequence = 0n;
  // Deltas are only meaningful after a snapshot (the bridge sends one first, and after a gap).
  ready = false;

  snapshot(sequence: bigint, bids: readonly BookLevel[], asks: readonly BookLevel[]): void {
    this.bids.clear();
    this.asks.clear();
    apply(this.bids, bids);
    apply(this.asks, asks);
    this.sequence = sequence;
    this.ready = true;
  }

  /** Applies a delta; false (and the book waits for a snapshot) when its sequence has a hole. */
  delta(sequence: bigint, bids: readonly BookLevel[], asks: readonly BookLevel[]): boolean {
    if (!this.ready || sequence !== this.sequence + 1n) {
      this.ready = false;
      return false;
    }
    apply(this.bids, bids);
    apply(this.asks, asks);
    this.sequence = sequence;
    return true;
  }

  /** Best `depth` levels of each side, best first. */
  top(depth: number): { bids: Level[]; asks: Level[] } {
    return { bids: best(this.bids, depth, true), asks: best(this.asks, depth, false) };
  }
}
