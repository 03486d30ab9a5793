// A price-time-priority order book for one symbol, in integer ticks and lots (bigint: exact at
// any size a request can name). It behaves as the sim's engine does
// (trademesh/core/domain/matching/engine.py): limit orders rest, market orders never do; IOC and FOK
// remainders expire; a post-only order that would cross is refused; self-matching is allowed.
// Every submit reports its fills in execution order and each level it changed, so a copy of the
// book built from the changes is the book.
//
// A submit may carry a maker cap: before a USER order in the book fills, the cap says how many
// lots it may still fill (null: no limit); an order above it is trimmed in place (removed at 0)
// and noted in `trimmed`. The exchange's reduce-only orders use it, so none fills past the
// position it reduces, even within one sweep.

import type { Side, TimeInForce } from "./model.js";

export const SYNTHETIC = 0;
export const USER = 1;

// (side, price in ticks, new total lots at that price); a total of 0 means the level is gone.
export type LevelChange = readonly [Side, bigint, bigint];

export interface Match {
  readonly makerId: number;
  readonly makerOwner: number;
  readonly takerId: number;
  readonly price: bigint;
  readonly lots: bigint;
}

export type MakerCap = (makerId: number, fills: readonly Match[]) => bigint | null;

export class MatchResult {
  readonly fills: Match[] = [];
  readonly changes: LevelChange[] = [];
  readonly trimmed: number[] = [];
  rested = 0n;
  expired = 0n;
  rejectedPostOnly = false;
  fokKilled = false;

  get filled(): bigint {
    return this.fills.reduce((total, fill) => total + fill.lots, 0n);
  }
}

export class Resting {
  constructor(
    readonly orderId: number,
    readonly owner: number,
    readonly side: Side,
    readonly price: bigint,
    public remaining: bigint,
  ) {}
}

class Level {
  readonly queue: Resting[] = [];
  total = 0n;
}

class BookSide {
  readonly levels = new Map<bigint, Level>();
  // Prices with orders, best first (bids high to low, asks low to high).
  private readonly prices: bigint[] = [];

  constructor(readonly side: Side) {}

  best(): bigint | null {
    return this.prices.length > 0 ? this.prices[0]! : null;
  }

  // Whether a price on this side is reachable by a taker limited at `limit` (null: market).
  reachable(price: bigint, limit: bigint | null): boolean {
    return limit === null || (this.side === "buy" ? price >= limit : price <= limit);
  }

  reaches(limit: bigint | null): boolean {
    const best = this.best();
    return best !== null && this.reachable(best, limit);
  }

  ordered(): readonly bigint[] {
    return this.prices;
  }

  levelFor(price: bigint): Level {
    let level = this.levels.get(price);
    if (level === undefined) {
      level = new Level();
      this.levels.set(price, level);
      this.prices.splice(this.insertAt(price), 0, price);
    }
    return level;
  }

  drop(price: bigint): void {
    this.levels.delete(price);
    const index = this.prices.indexOf(price);
    if (index >= 0) {
      this.prices.splice(index, 1);
    }
  }

  private insertAt(price: bigint): number {
    let low = 0;
    let high = this.prices.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      const better = this.side === "buy" ? this.prices[middle]! > price : this.prices[middle]! < price;
      if (better) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }
}

export class OrderBook {
  private readonly bids = new BookSide("buy");
  private readonly asks = new BookSide("sell");
  private readonly index = new Map<number, Resting>();

  constructor(readonly symbol: string) {}

  bestBid(): bigint | null {
    return this.bids.best();
  }

  bestAsk(): bigint | null {
    return this.asks.best();
  }

  // Aggregated levels best first: [price ticks, total lots].
  depth(side: Side, n?: number): Array<[bigint, bigint]> {
    const bookSide = this.own(side);
    const prices = n === undefined ? bookSide.ordered() : bookSide.ordered().slice(0, n);
    return prices.map((price) => [price, bookSide.levels.get(price)!.total]);
  }

  resting(orderId: number): Resting | undefined {
    return this.index.get(orderId);
  }

  wouldCross(side: Side, price: bigint): boolean {
    return this.opposite(side).reaches(price);
  }

  // Lots a taker could fill now, counted up to `lots`.
  fillable(side: Side, price: bigint | null, lots: bigint): bigint {
    const opp = this.opposite(side);
    let total = 0n;
    for (const levelPrice of opp.ordered()) {
      if (!opp.reachable(levelPrice, price) || total >= lots) {
        break;
      }
      total += opp.levels.get(levelPrice)!.total;
    }
    return total < lots ? total : lots;
  }

  // The [price, lots] a taker would fill now, in order, without touching the book.
  preview(side: Side, price: bigint | null, lots: bigint): Array<[bigint, bigint]> {
    const opp = this.opposite(side);
    const out: Array<[bigint, bigint]> = [];
    for (const levelPrice of opp.ordered()) {
      if (lots === 0n || !opp.reachable(levelPrice, price)) {
        break;
      }
      const total = opp.levels.get(levelPrice)!.total;
      const take = lots < total ? lots : total;
      out.push([levelPrice, take]);
      lots -= take;
    }
    return out;
  }

  // A limit order when `price` is given, a market order (never rests) when it is null.
  submit(
    orderId: number,
    owner: number,
    side: Side,
    price: bigint | null,
    lots: bigint,
    tif: TimeInForce,
    postOnly = false,
    cap: MakerCap | null = null,
  ): MatchResult {
    if (lots <= 0n || (price !== null && price <= 0n) || this.index.has(orderId)) {
      throw new RangeError(`order ${orderId} cannot be submitted: ${lots} lots at ${price} ticks`);
    }
    const own = this.own(side);
    const opp = this.opposite(side);
    const result = new MatchResult();
    if (postOnly && (price === null || opp.reaches(price))) {
      result.rejectedPostOnly = true;
      return result;
    }
    if (tif === "fok" && this.fillable(side, price, lots) < lots) {
      result.fokKilled = true;
      result.expired = lots;
      return result;
    }
    const remaining = opp.reaches(price) ? this.take(orderId, opp, price, lots, result, cap) : lots;
    if (remaining === 0n) {
      return result;
    }
    if (price === null || tif !== "gtc") {
      result.expired = remaining;
    } else {
      result.rested = remaining;
      result.changes.push(this.rest(own, new Resting(orderId, owner, side, price, remaining)));
    }
    return result;
  }

  // Removes a resting order: [lots removed, level change]; [0, null] when it is not resting.
  cancel(orderId: number): [bigint, LevelChange | null] {
    const order = this.index.get(orderId);
    if (order === undefined) {
      return [0n, null];
    }
    this.index.delete(orderId);
    const bookSide = this.own(order.side);
    const level = bookSide.levels.get(order.price)!;
    const lots = order.remaining;
    order.remaining = 0n;
    level.queue.splice(level.queue.indexOf(order), 1);
    level.total -= lots;
    if (level.queue.length === 0) {
      bookSide.drop(order.price);
    }
    return [lots, [order.side, order.price, level.total]];
  }

  // Takes up to `lots` off a resting order, which keeps its place in the queue; all of it is a
  // cancel. [lots removed, level change]; [0, null] when it is not resting.
  reduce(orderId: number, lots: bigint): [bigint, LevelChange | null] {
    const order = this.index.get(orderId);
    if (order === undefined || lots <= 0n) {
      return [0n, null];
    }
    if (lots >= order.remaining) {
      return this.cancel(orderId);
    }
    const level = this.own(order.side).levels.get(order.price)!;
    order.remaining -= lots;
    level.total -= lots;
    return [lots, [order.side, order.price, level.total]];
  }

  private own(side: Side): BookSide {
    return side === "buy" ? this.bids : this.asks;
  }

  private opposite(side: Side): BookSide {
    return side === "buy" ? this.asks : this.bids;
  }

  private rest(own: BookSide, order: Resting): LevelChange {
    const level = own.levelFor(order.price);
    level.queue.push(order);
    level.total += order.remaining;
    this.index.set(order.orderId, order);
    return [own.side, order.price, level.total];
  }

  private take(
    takerId: number,
    opp: BookSide,
    limit: bigint | null,
    lots: bigint,
    result: MatchResult,
    cap: MakerCap | null,
  ): bigint {
    while (lots > 0n) {
      const best = opp.best();
      if (best === null || !opp.reachable(best, limit)) {
        break;
      }
      const level = opp.levels.get(best)!;
      lots = this.takeLevel(level, best, takerId, lots, result, cap);
      result.changes.push([opp.side, best, level.total]);
      if (level.queue.length === 0) {
        opp.drop(best);
      }
    }
    return lots;
  }

  private takeLevel(
    level: Level,
    price: bigint,
    takerId: number,
    lots: bigint,
    result: MatchResult,
    cap: MakerCap | null,
  ): bigint {
    const queue = level.queue;
    while (lots > 0n && queue.length > 0) {
      const maker = queue[0]!;
      if (cap !== null && maker.owner === USER && !this.withinCap(level, maker, cap, result)) {
        continue; // trimmed to nothing: gone from the level
      }
      const take = lots < maker.remaining ? lots : maker.remaining;
      result.fills.push({ makerId: maker.orderId, makerOwner: maker.owner, takerId, price, lots: take });
      maker.remaining -= take;
      level.total -= take;
      lots -= take;
      if (maker.remaining === 0n) {
        queue.shift();
        this.index.delete(maker.orderId);
      }
    }
    return lots;
  }

  // Trims a USER maker to what its cap lets it fill now; false when that is nothing (it is then
  // out of the level, as a cancel would leave it).
  private withinCap(level: Level, maker: Resting, cap: MakerCap, result: MatchResult): boolean {
    const room = cap(maker.orderId, result.fills);
    if (room === null || room >= maker.remaining) {
      return true;
    }
    const kept = room > 0n ? room : 0n;
    result.trimmed.push(maker.orderId);
    level.total -= maker.remaining - kept;
    maker.remaining = kept;
    if (kept > 0n) {
      return true;
    }
    level.queue.shift();
    this.index.delete(maker.orderId);
    return false;
  }
}
