// The seeded market: per symbol, a mid price on a geometric random walk, makers quoting a grid of
// levels around it and takers sending orders into it, all through the exchange's books, so the
// account's orders rest in the same books and fill against this flow in price-time priority.
// The market moves in fixed steps, each with a fixed number of actions: a seed always makes the
// same tape, whatever the machine's speed. (The sim's market, trademesh/venues/sim/market_data.py, in
// outline: its makers and takers; the pace and sizes are node-ref's own.)
//
// The mid is synthetic, not money: it is a float of ticks, rounded to whole ticks for orders.

import type { SymbolSpec } from "./config.js";
import type { Exchange } from "./exchange.js";
import type { Side } from "./model.js";
import { opposite } from "./model.js";

// The share of maker actions that add liquidity; the rest cancel.
const ADD_SHARE = 0.6;
// Synthetic orders a level holds at most; one more first cancels its oldest (a bounded book).
const MAX_ORDERS_PER_LEVEL = 8;

// A small seeded generator (64-bit state, splitmix-style mixing) with the draws the market needs.
export class Random {
  private state: bigint;
  private spare: number | null = null;

  constructor(seed: bigint) {
    this.state = BigInt.asUintN(64, seed);
  }

  // A float in [0, 1) with 53 random bits.
  next(): number {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  }

  // A standard normal draw (Box-Muller, the second value kept for the next call).
  gauss(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    const u = 1 - this.next();
    const v = this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  // An exponential draw of mean `mean`.
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

// FNV-1a of a symbol, so each symbol's flow has its own stream of the seed.
function symbolHash(symbol: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(symbol)) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  }
  return hash;
}

export class SyntheticSymbol {
  private readonly rng: Random;
  private mid: number;
  private readonly stepSigma: number;
  private readonly makersPerStep: number;
  private readonly takersPerStep: number;
  private makerCredit = 0;
  private takerCredit = 0;
  // Per side, the synthetic orders resting at each price (oldest first).
  private readonly quotes: Record<Side, Map<bigint, number[]>> = { buy: new Map(), sell: new Map() };
  private scannedAnchor = 0n;

  constructor(
    private readonly exchange: Exchange,
    private readonly spec: SymbolSpec,
    seed: bigint,
    stepS: number,
  ) {
    this.rng = new Random(seed ^ symbolHash(spec.symbol));
    this.mid = Number(spec.startPrice.unitsOf(spec.tickSize));
    this.stepSigma = spec.volatilityPerSqrtS * Math.sqrt(stepS);
    this.makersPerStep = spec.bookUpdatesPerS * stepS;
    this.takersPerStep = spec.tradesPerS * stepS;
  }

  // Every level of both sides quoted once, so the book has depth from the start.
  prime(): void {
    for (let level = 1; level <= this.spec.depthLevels; level += 1) {
      this.add("buy", level);
      this.add("sell", level);
    }
  }

  step(): void {
    this.mid *= Math.exp(this.stepSigma * this.rng.gauss());
    this.cancelStale();
    this.replenish();
    this.makerCredit += this.makersPerStep;
    while (this.makerCredit >= 1) {
      this.makerCredit -= 1;
      this.makerAction();
    }
    this.takerCredit += this.takersPerStep;
    while (this.takerCredit >= 1) {
      this.takerCredit -= 1;
      this.takerAction();
    }
  }

  private anchor(): bigint {
    const spacing = Number(this.spec.levelSpacingTicks);
    return BigInt(Math.max(1, Math.round(this.mid / spacing))) * this.spec.levelSpacingTicks;
  }

  private price(side: Side, level: number): bigint {
    const offset = BigInt(level) * this.spec.levelSpacingTicks;
    return side === "buy" ? this.anchor() - offset : this.anchor() + offset;
  }

  private makerAction(): void {
    const side: Side = this.rng.next() < 0.5 ? "buy" : "sell";
    if (this.rng.next() < ADD_SHARE || this.quotes[side].size === 0) {
      // Levels near the mid are refreshed more often than far ones.
      this.add(side, 1 + Math.floor(this.spec.depthLevels * this.rng.next() ** 2));
    } else {
      this.cancelOldest(side);
    }
  }

  private add(side: Side, level: number): void {
    const price = this.price(side, level);
    if (price <= 0n) {
      return;
    }
    const lots = BigInt(1 + Math.floor(this.rng.exponential(this.spec.makerSizeLots)));
    const levels = this.quotes[side];
    const ids = levels.get(price) ?? [];
    if (ids.length >= MAX_ORDERS_PER_LEVEL) {
      this.cancelFirst(ids);
    }
    const orderId = this.exchange.submitSynthetic(this.spec.symbol, side, price, lots, "gtc");
    if (this.exchange.market(this.spec.symbol).book.resting(orderId) !== undefined) {
      ids.push(orderId);
      levels.set(price, ids);
    } else if (ids.length === 0) {
      levels.delete(price);
    }
  }

  private cancelOldest(side: Side): void {
    const levels = this.quotes[side];
    const price = this.rng.pick([...levels.keys()]);
    const ids = levels.get(price)!;
    this.cancelFirst(ids);
    if (ids.length === 0) {
      levels.delete(price);
    }
  }

  // Cancels the oldest of these orders that still rests; drops the filled ones before it.
  private cancelFirst(ids: number[]): void {
    while (ids.length > 0 && this.exchange.cancelSynthetic(this.spec.symbol, ids.shift()!) === 0n) {
      // filled meanwhile: try the next
    }
  }

  // Takes back quotes the mid has left behind.
  private cancelStale(): void {
    const anchor = this.anchor();
    if (anchor === this.scannedAnchor) {
      return;
    }
    this.scannedAnchor = anchor;
    const reach = BigInt(this.spec.depthLevels) * this.spec.levelSpacingTicks;
    for (const side of ["buy", "sell"] as const) {
      const levels = this.quotes[side];
      for (const price of [...levels.keys()]) {
        const distance = side === "buy" ? anchor - price : price - anchor;
        if (distance > 0n && distance <= reach) {
          continue;
        }
        for (const orderId of levels.get(price)!) {
          this.exchange.cancelSynthetic(this.spec.symbol, orderId);
        }
        levels.delete(price);
      }
    }
  }

  // A side quoted on fewer than half its levels gets its innermost empty levels back.
  private replenish(): void {
    const wanted = this.spec.depthLevels;
    for (const side of ["buy", "sell"] as const) {
      const levels = this.quotes[side];
      for (let level = 1; level <= wanted && levels.size * 2 < wanted; level += 1) {
        if (!levels.has(this.price(side, level))) {
          this.add(side, level);
        }
      }
    }
  }

  // An IOC order that trades as far as the quoted range reaches and no further.
  private takerAction(): void {
    const side: Side = this.rng.next() < 0.5 ? "buy" : "sell";
    const lots = BigInt(1 + Math.floor(this.rng.exponential(this.spec.takerSizeLots)));
    const limit = this.price(opposite(side), this.spec.depthLevels);
    this.exchange.submitSynthetic(this.spec.symbol, side, limit > 1n ? limit : 1n, lots, "ioc");
  }
}

export class SyntheticMarket {
  readonly symbols: SyntheticSymbol[];

  constructor(exchange: Exchange, specs: readonly SymbolSpec[], seed: bigint, stepS: number) {
    this.symbols = specs.map((spec) => new SyntheticSymbol(exchange, spec, seed, stepS));
  }

  prime(): void {
    this.symbols.forEach((symbol) => symbol.prime());
  }

  step(): void {
    this.symbols.forEach((symbol) => symbol.step());
  }
}
