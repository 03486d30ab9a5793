// The venue: its exchange and seeded market, the market-data feed and fan-out, the executions
// and account hubs, the streams it publishes (Admin's subscriptions), the dead-man switch and its
// lifecycle (starting, running, draining). Everything runs on the one event loop: an order, a
// cancel or a market step is one synchronous operation, its events flushed at its end, so a
// subscriber never joins between an event and its flush.

import { AccountHub } from "./account.js";
import { VenueClock, wallNs } from "./clock.js";
import { CANDLE_INTERVAL_MS, STEP_MS, SYMBOLS, TICKER_INTERVAL_MS, type SymbolSpec } from "./config.js";
import { DeadMan, deadManReason, type Kept } from "./deadman.js";
import { FailedPrecondition, NotFound, Unavailable } from "./errors.js";
import { Exchange, type ExchangeListener } from "./exchange.js";
import { ExecutionHub } from "./executions.js";
import { History, MarketFanout, routeParts, type Route } from "./fanout.js";
import { MarketFeed, StreamTable } from "./feed.js";
import { log } from "./log.js";
import { SyntheticMarket } from "./market.js";
import type { Channel, Execution, Order, OrderRequest } from "./model.js";
import { CHANNELS } from "./model.js";
import { Publisher } from "./publisher.js";

export type VenueState = "starting" | "running" | "draining";

// Behind schedule by more than this, the market skips the missed steps instead of bursting.
const MAX_LAG_MS = 250;

export const DRAIN_REASON = "drain: the venue is draining (Admin/Drain); reduce-only orders kept";

export function streamKey(symbol: string, channel: Channel): string {
  return `${symbol}\u0000${channel}`;
}

export interface VenueOptions {
  seed: bigint;
  historyS: number;
}

export class Venue {
  readonly clock = new VenueClock();
  readonly startedNs = wallNs();
  readonly instruments = new Map<string, SymbolSpec>(SYMBOLS.map((spec) => [spec.symbol, spec]));
  readonly streams = new StreamTable();
  readonly feed: MarketFeed;
  readonly fanout: MarketFanout;
  readonly executions: ExecutionHub;
  readonly account: AccountHub;
  readonly exchange: Exchange;
  readonly deadman: DeadMan;
  // The (symbol, channel) streams published now.
  active = new Set<string>();
  state: VenueState = "starting";
  // Told when the venue starts draining (health goes NOT_SERVING).
  onDrain: (() => void) | null = null;
  private readonly publisher: Publisher;
  private readonly market: SyntheticMarket;
  private loop: NodeJS.Timeout | null = null;
  private sampler: NodeJS.Timeout | null = null;
  skippedSteps = 0;

  constructor(private readonly options: VenueOptions) {
    this.feed = new MarketFeed(this.streams, this.clock.now);
    const history = new History(this.startedNs);
    this.fanout = new MarketFanout(history, (key) => this.recovery(key));
    this.feed.fanout = this.fanout;
    this.executions = new ExecutionHub(this.startedNs);
    // The publisher hears the exchange (it needs the exchange's markets to be made first).
    const listener: ExchangeListener = {
      onTrade: (...event) => this.publisher.onTrade(...event),
      onLevels: (...event) => this.publisher.onLevels(...event),
      onExecution: (execution) => this.publisher.onExecution(execution),
    };
    this.exchange = new Exchange(listener, this.clock.now);
    this.publisher = new Publisher(this.exchange, this.clock.now, (execution) => this.onExecution(execution));
    this.market = new SyntheticMarket(this.exchange, SYMBOLS, options.seed, STEP_MS / 1000);
    this.account = new AccountHub({
      balances: () => this.exchange.balances(),
      positions: () => this.exchange.positions(null),
      asOfNs: () => this.clock.now(),
    });
    this.deadman = new DeadMan((ttlMs) => this.cancelOpeners(deadManReason(ttlMs)), wallNs);
  }

  // The streams every symbol has: all channels but funding (spot has none).
  defaultStreams(): Set<string> {
    const keys = new Set<string>();
    for (const symbol of this.instruments.keys()) {
      CHANNELS.filter((c) => c !== "funding").forEach((channel) => keys.add(streamKey(symbol, channel)));
    }
    return keys;
  }

  // Plays the history (only its candles kept), opens every stream with a snapshot of its book,
  // then runs the market in steps.
  start(): void {
    this.market.prime();
    this.playHistory();
    this.active = this.defaultStreams();
    this.publisher.attach(
      this.feed,
      [...this.active].map((key) => key.split("\u0000") as [string, Channel]),
    );
    for (const key of this.active) {
      const [symbol, channel] = key.split("\u0000") as [string, Channel];
      this.streams.get(symbol, channel).state = "connected";
      if (channel === "book") {
        this.publisher.publishBook(symbol);
      }
    }
    this.feed.flush();
    this.state = "running";
    this.runMarket();
    this.sampler = setInterval(() => this.streams.all().forEach((s) => s.sample(performance.now())), 1000);
  }

  stop(): void {
    this.endStreams();
    this.deadman.stop();
    if (this.loop !== null) {
      clearTimeout(this.loop);
    }
    if (this.sampler !== null) {
      clearInterval(this.sampler);
    }
  }

  endStreams(): number {
    return this.fanout.endAll() + this.executions.endAll() + this.account.endAll();
  }

  requireServing(): void {
    if (this.state === "draining") {
      throw new Unavailable(`venue node-ref is draining: it takes no new orders or subscriptions`);
    }
  }

  // ---- trading (each call one operation, its events flushed at its end)

  placeOrder(req: OrderRequest): [Order, boolean] {
    try {
      return this.exchange.place(req);
    } finally {
      this.feed.flush();
    }
  }

  cancelOrder(orderId: string, clientOrderId: string, reason: string): Order {
    try {
      return this.exchange.cancel(orderId, clientOrderId, reason);
    } finally {
      this.feed.flush();
    }
  }

  cancelAll(symbol: string | null, reason: string): Order[] {
    try {
      return this.exchange.cancelAll(symbol, reason);
    } finally {
      this.feed.flush();
    }
  }

  // Cancels every open order that is not reduce-only, one by one, each with `reason`.
  cancelOpeners(reason: string): Kept {
    const orders = this.exchange.openOrders(null);
    const canceled: Order[] = [];
    for (const order of orders.filter((o) => !o.reduceOnly)) {
      try {
        canceled.push(this.exchange.cancel(order.orderId, "", reason));
      } catch (error) {
        if (!(error instanceof NotFound || error instanceof FailedPrecondition)) {
          throw error;
        }
      }
    }
    this.feed.flush();
    return { canceled, kept: orders.filter((o) => o.reduceOnly).length };
  }

  // Stops serving; with cancelOrders, cancels what could open or add to a position first, so
  // the execution streams carry the cancels before they end.
  drain(cancelOrders: boolean): [number, Kept] {
    this.state = "draining";
    this.onDrain?.();
    const kept = cancelOrders ? this.cancelOpeners(DRAIN_REASON) : { canceled: [], kept: 0 };
    return [this.endStreams(), kept];
  }

  // ---- streams (Admin's subscriptions)

  // The routes' keys streamed now, and the others with why each is not; FailedPrecondition when
  // none of them is.
  splitActive(
    keys: ReadonlyArray<readonly [string, Channel]>,
  ): [Array<readonly [string, Channel]>, Array<[string, Channel, string]>] {
    const served: Array<readonly [string, Channel]> = [];
    const missing: Array<[string, Channel, string]> = [];
    for (const [symbol, channel] of keys) {
      if (this.active.has(streamKey(symbol, channel))) {
        served.push([symbol, channel]);
      } else {
        missing.push([symbol, channel, this.notStreamed(symbol, channel)]);
      }
    }
    if (served.length === 0 && missing.length > 0) {
      throw new FailedPrecondition(missing.map(([, , why]) => why).join("; "));
    }
    return [served, missing];
  }

  setStreams(keys: Set<string>): void {
    const added = [...keys].filter((key) => !this.active.has(key));
    const removed = [...this.active].filter((key) => !keys.has(key));
    this.publisher.attach(
      this.feed,
      [...keys].map((key) => key.split("\u0000") as [string, Channel]),
    );
    for (const key of keys) {
      const [symbol, channel] = key.split("\u0000") as [string, Channel];
      this.streams.get(symbol, channel).state = "connected";
    }
    // While a book stream was off the feed's copy missed every change: resync it.
    for (const key of added.sort()) {
      const [symbol, channel] = key.split("\u0000") as [string, Channel];
      if (channel === "book") {
        this.publisher.publishBook(symbol, "book stream added");
      }
    }
    for (const key of removed) {
      const [symbol, channel] = key.split("\u0000") as [string, Channel];
      this.streams.get(symbol, channel).state = "stopped";
      this.feed.gap(symbol, channel, "stream removed by an operator (Admin/RemoveSubscriptions)");
    }
    this.feed.flush();
    this.active = keys;
  }

  // No upstream to reconnect to: every book is sent again as a resync, the other streams get a
  // GAP notice. The number of streams re-opened.
  reconnect(): number {
    const keys = [...this.active].sort();
    for (const key of keys) {
      const [symbol, channel] = key.split("\u0000") as [string, Channel];
      this.streams.get(symbol, channel).reconnects += 1n;
      if (channel === "book") {
        this.publisher.publishBook(symbol, "reconnect requested");
      } else {
        this.feed.gap(symbol, channel, "reconnect requested");
      }
    }
    this.feed.flush();
    return keys.length;
  }

  subscriberCount(symbol: string, channel: Channel): number {
    let count = 0;
    for (const subscriber of this.fanout.subscribers) {
      if ([...subscriber.routes].some((key) => routeParts(key)[0] === symbol && routeParts(key)[1] === channel)) {
        count += 1;
      }
    }
    return count;
  }

  candles(symbol: string) {
    return this.publisher.candles.get(symbol)!;
  }

  trades(symbol: string, sinceNs: bigint, endNs: bigint, limit: number) {
    return this.publisher.trades(symbol, sinceNs, endNs, limit);
  }

  tickers(symbols: readonly string[]) {
    const nowNs = this.clock.now();
    return symbols.map((symbol) => this.publisher.latestTicker(symbol, nowNs)).filter((t) => t !== null);
  }

  // ---- internals

  private notStreamed(symbol: string, channel: Channel): string {
    if (channel === "funding") {
      return `not streamed by venue node-ref: ${symbol} is spot: only a perpetual has a funding rate`;
    }
    return `not streamed by venue node-ref: ${symbol} ${channel}; add with Admin/AddSubscriptions`;
  }

  private onExecution(execution: Execution): void {
    this.executions.publish(execution);
    this.account.touch();
  }

  // What a conflated subscriber gets for a route: a GAP notice, and a fresh snapshot of a book.
  private recovery(key: Route): Uint8Array {
    const [symbol, channel] = routeParts(key);
    const gap = this.feed.gapChunk(symbol, channel, "subscriber fell behind: events were dropped (conflated)");
    return channel === "book" ? Buffer.concat([gap, this.feed.snapshotChunk(symbol)]) : gap;
  }

  // Plays `historyS` seconds of market in simulated time ending now, before any stream is on:
  // only the candles keep it. The seconds the play took are played after it, so the candles run
  // without a hole into the live market.
  private playHistory(): void {
    if (this.options.historyS === 0) {
      return;
    }
    const began = performance.now();
    const stepNs = BigInt(STEP_MS) * 1_000_000n;
    let nowNs = wallNs();
    let at = nowNs - ((BigInt(this.options.historyS) * 1_000_000_000n) / stepNs) * stepNs;
    for (let pass = 0; pass < 5; pass += 1) {
      while (at < nowNs) {
        this.clock.simulatedNs = at;
        this.market.step();
        at += stepNs;
      }
      nowNs = wallNs();
      if (nowNs - at < stepNs) {
        break;
      }
    }
    this.clock.simulatedNs = null;
    for (const book of this.publisher.candles.values()) {
      book.roll(nowNs, () => undefined);
    }
    log.info("played the market's history", {
      history_s: this.options.historyS,
      took_ms: Math.round(performance.now() - began),
    });
  }

  // One market step per timer turn, so gRPC serves between steps.
  private runMarket(): void {
    let nextStep = performance.now();
    let nextTicker = 0;
    let nextCandles = 0;
    const step = (): void => {
      const now = performance.now();
      if (now - nextStep > MAX_LAG_MS) {
        const skipped = Math.floor((now - nextStep) / STEP_MS);
        this.skippedSteps += skipped;
        nextStep += skipped * STEP_MS;
      }
      this.market.step();
      nextStep += STEP_MS;
      const nowNs = this.clock.now();
      if (now >= nextTicker) {
        this.publisher.publishTickers(nowNs);
        nextTicker = now + TICKER_INTERVAL_MS;
      }
      if (now >= nextCandles) {
        this.publisher.publishCandles(nowNs);
        nextCandles = now + CANDLE_INTERVAL_MS;
      }
      this.feed.flush();
      this.loop = setTimeout(step, Math.max(0, nextStep - performance.now()));
    };
    this.loop = setTimeout(step, STEP_MS);
  }
}
