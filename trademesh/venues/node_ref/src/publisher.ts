// The exchange's callbacks as market events on the feed: trades and book changes as they happen;
// tickers (best bid and ask, last price, the 24h volume and 24h open of the venue's own trades) and open
// candles on their own intervals; closed candles when their interval ends. Only the streams that
// are on (Admin's subscriptions) are published; candles are kept whatever is on (GetCandles).

import { create } from "@bufbuild/protobuf";
import { SymbolTickerSchema, TickerSchema } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import type { SymbolTicker, Ticker } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import type { LevelChange } from "./book.js";
import { CandleBook, type IntCandle } from "./candles.js";
import { Dec } from "./decimal.js";
import type { Exchange, ExchangeListener, Market } from "./exchange.js";
import type { Level, MarketFeed } from "./feed.js";
import type { Channel, Execution, Side, Timeframe } from "./model.js";
import { TradeLog, type PublicTrade } from "./trades.js";

const DAY_MS = 24 * 3600 * 1000;
const BUCKET_MS = 60 * 1000;

// Traded lots and ticks * lots over the last 24 hours, in one-minute buckets, and the window's
// open: each bucket keeps its first trade's price (set as it is made: nothing more a trade), the
// oldest bucket in the window holds the price 24 h ago (trademesh/venues/sim/volume.py's rule).
export class RollingVolume {
  private readonly buckets: Array<[number, bigint, bigint, bigint]> = [];
  private lots = 0n;
  private notional = 0n;

  add(atMs: number, price: bigint, lots: bigint): void {
    const start = atMs - (atMs % BUCKET_MS);
    const last = this.buckets[this.buckets.length - 1];
    if (last !== undefined && last[0] === start) {
      last[1] += lots;
      last[2] += price * lots;
    } else {
      this.buckets.push([start, lots, price * lots, price]);
    }
    this.lots += lots;
    this.notional += price * lots;
  }

  totals(nowMs: number): [bigint, bigint] {
    while (this.buckets.length > 0 && this.buckets[0]![0] + BUCKET_MS <= nowMs - DAY_MS) {
      const [, lots, notional] = this.buckets.shift()!;
      this.lots -= lots;
      this.notional -= notional;
    }
    return [this.lots, this.notional];
  }

  // The price ticks 24 h ago: the window's first trade's, else `last` (no trade since), else null.
  opening(nowMs: number, last: bigint | undefined): bigint | null {
    this.totals(nowMs);
    return this.buckets[0]?.[3] ?? last ?? null;
  }
}

export class Publisher implements ExchangeListener {
  feed: MarketFeed | null = null;
  readonly candles = new Map<string, CandleBook>();
  private readonly volumes = new Map<string, RollingVolume>();
  // Its latest trades of each symbol, for GetTrades.
  private readonly tradeLogs = new Map<string, TradeLog>();
  private readonly lastPrice = new Map<string, bigint>();
  private readonly lastTicker = new Map<string, string>();
  private on = new Set<string>();

  constructor(
    private readonly exchange: Exchange,
    private readonly clock: () => bigint,
    private readonly onExecutionOf: (execution: Execution) => void,
  ) {
    for (const market of exchange.markets.values()) {
      this.candles.set(market.instrument.symbol, new CandleBook(market.price, market.size));
      this.volumes.set(market.instrument.symbol, new RollingVolume());
      this.tradeLogs.set(market.instrument.symbol, new TradeLog());
    }
  }

  // Publishes to `feed` from now on, for these (symbol, channel) streams.
  attach(feed: MarketFeed, streams: Iterable<readonly [string, Channel]>): void {
    this.feed = feed;
    this.on = new Set([...streams].map(([symbol, channel]) => `${symbol}\u0000${channel}`));
  }

  isOn(symbol: string, channel: Channel): boolean {
    return this.feed !== null && this.on.has(`${symbol}\u0000${channel}`);
  }

  onTrade(symbol: string, tradeId: string, priceTicks: bigint, lots: bigint, takerSide: Side, tsNs: bigint): void {
    this.lastPrice.set(symbol, priceTicks);
    this.volumes.get(symbol)!.add(Number(tsNs / 1_000_000n), priceTicks, lots);
    this.tradeLogs.get(symbol)!.add(tsNs, tradeId, priceTicks, lots, takerSide);
    this.candles.get(symbol)!.addTrade(tsNs, priceTicks, lots, (tf, candle) => this.closed(symbol, tf, candle, tsNs));
    if (this.isOn(symbol, "trades")) {
      const market = this.market(symbol);
      this.feed!.trade(symbol, tsNs, tradeId, market.price.text(priceTicks), market.size.text(lots), takerSide);
    }
  }

  onLevels(symbol: string, changes: readonly LevelChange[]): void {
    if (!this.isOn(symbol, "book")) {
      return;
    }
    const market = this.market(symbol);
    const bids: Level[] = [];
    const asks: Level[] = [];
    for (const [side, price, lots] of changes) {
      (side === "buy" ? bids : asks).push([market.price.text(price), market.size.text(lots)]);
    }
    this.feed!.bookDelta(symbol, this.clock(), bids, asks);
  }

  onExecution(execution: Execution): void {
    this.onExecutionOf(execution);
  }

  // The whole book as a snapshot: with a reason, a resync; without, the stream's first book.
  publishBook(symbol: string, reason = ""): void {
    if (!this.isOn(symbol, "book")) {
      return;
    }
    const market = this.market(symbol);
    const levels = (side: Side): Level[] =>
      market.book.depth(side).map(([price, lots]) => [market.price.text(price), market.size.text(lots)]);
    this.feed!.bookSnapshot(symbol, this.clock(), levels("buy"), levels("sell"), reason);
  }

  publishTickers(nowNs: bigint): void {
    for (const symbol of this.candles.keys()) {
      if (!this.isOn(symbol, "tickers")) {
        continue;
      }
      const ticker = this.ticker(symbol, nowNs);
      const key = JSON.stringify([
        ticker.bestBid,
        ticker.bestBidSize,
        ticker.bestAsk,
        ticker.bestAskSize,
        ticker.lastPrice,
        ticker.open24h,
      ]);
      if (key !== this.lastTicker.get(symbol)) {
        this.lastTicker.set(symbol, key);
        this.feed!.ticker(symbol, nowNs, ticker);
      }
    }
  }

  // Closes ended intervals, then sends every open candle's state.
  publishCandles(nowNs: bigint): void {
    for (const [symbol, book] of this.candles) {
      book.roll(nowNs, (tf, candle) => this.closed(symbol, tf, candle, nowNs));
      if (!this.isOn(symbol, "candles")) {
        continue;
      }
      for (const [timeframe, candle] of book.openCandles()) {
        this.feed!.candle(symbol, nowNs, book.toCandle(timeframe, candle, false));
      }
    }
  }

  private closed(symbol: string, timeframe: Timeframe, candle: IntCandle, nowNs: bigint): void {
    if (this.isOn(symbol, "candles")) {
      this.feed!.candle(symbol, nowNs, this.candles.get(symbol)!.toCandle(timeframe, candle, true));
    }
  }

  // The symbol's ticker as of now (GetTickers); null while it has no market (no book, no trade).
  latestTicker(symbol: string, nowNs: bigint): SymbolTicker | null {
    const ticker = this.ticker(symbol, nowNs);
    if (ticker.bestBid === "" && ticker.bestAsk === "" && ticker.lastPrice === "") {
      return null;
    }
    return create(SymbolTickerSchema, { symbol, tsEventNs: nowNs, ticker });
  }

  // Its kept trades of the symbol from sinceNs (GetTrades).
  trades(symbol: string, sinceNs: bigint, endNs: bigint, limit: number): { trades: PublicTrade[]; complete: boolean } {
    const market = this.market(symbol);
    return this.tradeLogs.get(symbol)!.read(
      sinceNs,
      endNs,
      limit,
      (ticks) => market.price.text(ticks),
      (lots) => market.size.text(lots),
    );
  }

  private ticker(symbol: string, nowNs: bigint): Ticker {
    const market = this.market(symbol);
    const volume = this.volumes.get(symbol)!;
    const [lots, notional] = volume.totals(Number(nowNs / 1_000_000n));
    const opened = volume.opening(Number(nowNs / 1_000_000n), this.lastPrice.get(symbol));
    const ticker = create(TickerSchema, {
      baseVolume24h: market.size.value(lots).toString(),
      quoteVolume24h: market.price.step.mul(market.size.step).mul(Dec.int(notional)).toString(),
      open24h: opened === null ? "" : market.price.text(opened),
    });
    const [bid] = market.book.depth("buy", 1);
    const [ask] = market.book.depth("sell", 1);
    if (bid !== undefined) {
      ticker.bestBid = market.price.text(bid[0]);
      ticker.bestBidSize = market.size.text(bid[1]);
    }
    if (ask !== undefined) {
      ticker.bestAsk = market.price.text(ask[0]);
      ticker.bestAskSize = market.size.text(ask[1]);
    }
    const last = this.lastPrice.get(symbol);
    if (last !== undefined) {
      ticker.lastPrice = market.price.text(last);
    }
    return ticker;
  }

  private market(symbol: string): Market {
    return this.exchange.market(symbol);
  }
}
