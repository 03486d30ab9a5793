// Where the venue reports market data: events are built once, batched per route, sent on flush.
//
// The exchange's trades and level changes, the tickers and candles become events as they
// happen; flush() (after each market step, and after each order that moved a book) encodes each
// route's events into one SubscribeResponse and hands them to the fan-out. Each symbol's book
// has a sequence: every snapshot or delta takes the next number, so a subscriber that applies
// them in order sees no hole. The feed keeps a copy of each book as last flushed: the snapshot a
// new subscriber starts from is exactly the book the next delta applies to.

import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Side as PbSide } from "./gen/trademesh/common/v1/common_pb.js";
import {
  BookLevelSchema,
  Channel as PbChannel,
  MarketEventSchema,
  NoticeKind,
  SubscribeResponseSchema,
} from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import type { BookLevel, MarketEvent, Ticker } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import { VENUE } from "./config.js";
import { candleToPb, CHANNEL_TO_PB } from "./convert.js";
import { Dec } from "./decimal.js";
import { route, type MarketFanout, type Route } from "./fanout.js";
import type { Candle, Channel, Side } from "./model.js";
import { TIMEFRAMES } from "./model.js";

// What an event carries, as protobuf-es takes it.
type Payload = NonNullable<MessageInitShape<typeof MarketEventSchema>["payload"]>;

export type Level = readonly [string, string]; // [price, size]; size "0" removes the level

export type StreamState = "connecting" | "connected" | "disconnected" | "stopped" | "failed";

// One stream's (symbol and channel) counters, for Admin's GetStatus.
export class StreamStats {
  state: StreamState = "connecting";
  eventsTotal = 0n;
  lastRecvMs: number | null = null;
  reconnects = 0n;
  resyncs = 0n;
  eventsPerS = 0;
  private samples: Array<[number, bigint]> = [];

  constructor(
    readonly symbol: string,
    readonly channel: Channel,
  ) {}

  // Events a second over the last few seconds (called once a second).
  sample(nowMs: number): void {
    this.samples.push([nowMs, this.eventsTotal]);
    if (this.samples.length > 6) {
      this.samples.shift();
    }
    const [firstMs, firstTotal] = this.samples[0]!;
    const seconds = (nowMs - firstMs) / 1000;
    this.eventsPerS = seconds > 0 ? Number(this.eventsTotal - firstTotal) / seconds : 0;
  }
}

export class StreamTable {
  private readonly streams = new Map<string, StreamStats>();

  get(symbol: string, channel: Channel): StreamStats {
    const key = `${symbol}\u0000${channel}`;
    let stats = this.streams.get(key);
    if (stats === undefined) {
      stats = new StreamStats(symbol, channel);
      this.streams.set(key, stats);
    }
    return stats;
  }

  all(): StreamStats[] {
    return [...this.streams.values()].sort((a, b) =>
      a.symbol === b.symbol ? CHANNEL_TO_PB[a.channel] - CHANNEL_TO_PB[b.channel] : a.symbol < b.symbol ? -1 : 1,
    );
  }
}

// A symbol's book as last flushed, its sequence, and the changes waiting for the flush.
class BookCopy {
  readonly bids = new Map<string, string>();
  readonly asks = new Map<string, string>();
  sequence = 0n;
  // The flushed book is the venue's (not the empty one before its first event, nor one a GAP
  // on its stream left stale until the next snapshot).
  ready = false;
  pending: Array<{ sequence: bigint; snapshot: boolean; bids: readonly Level[]; asks: readonly Level[] }> = [];

  applyPending(): void {
    for (const change of this.pending) {
      if (change.sequence === 0n) {
        this.ready = false;
        continue;
      }
      if (change.snapshot) {
        this.bids.clear();
        this.asks.clear();
      }
      apply(this.bids, change.bids);
      apply(this.asks, change.asks);
      this.sequence = change.sequence;
      // A book built from changes alone (this venue's) is whole from its first one.
      this.ready = this.ready || change.snapshot || change.sequence === 1n;
    }
    this.pending = [];
  }

  levels(side: Side): BookLevel[] {
    const levels = [...(side === "buy" ? this.bids : this.asks).entries()].map(
      ([price, size]) => [Dec.parse(price)!, price, size] as const,
    );
    levels.sort((a, b) => (side === "buy" ? b[0].cmp(a[0]) : a[0].cmp(b[0])));
    return levels.map(([, price, size]) => create(BookLevelSchema, { price, size }));
  }
}

function apply(side: Map<string, string>, levels: readonly Level[]): void {
  for (const [price, size] of levels) {
    if (Dec.parse(size)!.isZero()) {
      side.delete(price);
    } else {
      side.set(price, size);
    }
  }
}

export class MarketFeed {
  fanout: MarketFanout | null = null;
  private readonly pending = new Map<Route, MarketEvent[]>();
  private readonly books = new Map<string, BookCopy>();

  constructor(
    readonly streams: StreamTable,
    private readonly clock: () => bigint,
  ) {}

  trade(symbol: string, tsNs: bigint, tradeId: string, price: string, size: string, takerSide: Side): void {
    const takerSidePb = takerSide === "buy" ? PbSide.BUY : PbSide.SELL;
    this.event(route(symbol, "trades"), symbol, "trades", tsNs, {
      case: "trade",
      value: { tradeId, price, size, takerSide: takerSidePb },
    });
  }

  bookDelta(symbol: string, tsNs: bigint, bids: readonly Level[], asks: readonly Level[]): void {
    this.bookEvent(symbol, tsNs, bids, asks, false);
  }

  // Replaces the book; with a reason, its subscribers are told it was rebuilt (RESYNC).
  bookSnapshot(symbol: string, tsNs: bigint, bids: readonly Level[], asks: readonly Level[], resyncReason = ""): void {
    if (resyncReason !== "") {
      this.streams.get(symbol, "book").resyncs += 1n;
      this.notice(symbol, "book", NoticeKind.RESYNC, resyncReason);
    }
    this.bookEvent(symbol, tsNs, bids, asks, true);
  }

  candle(symbol: string, tsNs: bigint, candle: Candle): void {
    this.event(route(symbol, "candles", candle.timeframe), symbol, "candles", tsNs, {
      case: "candle",
      value: candleToPb(candle),
    });
  }

  ticker(symbol: string, tsNs: bigint, ticker: Ticker): void {
    this.event(route(symbol, "tickers"), symbol, "tickers", tsNs, { case: "ticker", value: ticker });
  }

  // A GAP or RESYNC notice on one stream (every timeframe of a candle stream); not an event.
  notice(symbol: string, channel: Channel, kind: NoticeKind, reason: string, sinceNs = 0n): void {
    const timeframes = channel === "candles" ? TIMEFRAMES : [null];
    for (const timeframe of timeframes) {
      const value = { kind, channel: CHANNEL_TO_PB[channel], reason, sinceNs };
      this.event(route(symbol, channel, timeframe), symbol, channel, this.clock(), { case: "notice", value }, false);
    }
  }

  // Events may be missing; a book's copy here is stale until its next snapshot.
  gap(symbol: string, channel: Channel, reason: string): void {
    if (channel === "book") {
      this.bookCopy(symbol).pending.push({ sequence: 0n, snapshot: false, bids: [], asks: [] });
    }
    this.notice(symbol, channel, NoticeKind.GAP, reason);
  }

  flush(): void {
    for (const book of this.books.values()) {
      if (book.pending.length > 0) {
        book.applyPending();
      }
    }
    if (this.pending.size === 0) {
      return;
    }
    const encoded = new Map<Route, Uint8Array>();
    for (const [key, events] of this.pending) {
      encoded.set(key, toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events })));
    }
    this.pending.clear();
    this.fanout?.dispatch(encoded);
  }

  bookReady(symbol: string): boolean {
    return this.books.get(symbol)?.ready ?? false;
  }

  // The book as last flushed, for a (re)starting subscriber; empty while it has none (the
  // subscriber then gets the venue's next snapshot like everyone else).
  snapshotChunk(symbol: string): Uint8Array {
    const book = this.books.get(symbol);
    if (book === undefined || !book.ready) {
      return new Uint8Array();
    }
    return this.single(symbol, {
      case: "bookSnapshot",
      value: { sequence: book.sequence, bids: book.levels("buy"), asks: book.levels("sell") },
    });
  }

  gapChunk(symbol: string, channel: Channel, reason: string): Uint8Array {
    return this.single(symbol, {
      case: "notice",
      value: { kind: NoticeKind.GAP, channel: CHANNEL_TO_PB[channel], reason },
    });
  }

  // A REFUSED notice: the symbol (on `channel`, or every channel asked when null) is not served.
  refusedChunk(symbol: string, channel: Channel | null, reason: string): Uint8Array {
    const pbChannel = channel === null ? PbChannel.UNSPECIFIED : CHANNEL_TO_PB[channel];
    return this.single(symbol, { case: "notice", value: { kind: NoticeKind.REFUSED, channel: pbChannel, reason } });
  }

  private bookEvent(
    symbol: string,
    tsNs: bigint,
    bids: readonly Level[],
    asks: readonly Level[],
    snapshot: boolean,
  ): void {
    const book = this.bookCopy(symbol);
    const sequence = book.sequence + BigInt(book.pending.filter((change) => change.sequence > 0n).length) + 1n;
    book.pending.push({ sequence, snapshot, bids, asks });
    const levels = {
      sequence,
      bids: bids.map(([price, size]) => ({ price, size })),
      asks: asks.map(([price, size]) => ({ price, size })),
    };
    const payload: Payload = snapshot ? { case: "bookSnapshot", value: levels } : { case: "bookDelta", value: levels };
    this.event(route(symbol, "book"), symbol, "book", tsNs, payload);
  }

  private bookCopy(symbol: string): BookCopy {
    let book = this.books.get(symbol);
    if (book === undefined) {
      book = new BookCopy();
      this.books.set(symbol, book);
    }
    return book;
  }

  private event(
    key: Route,
    symbol: string,
    channel: Channel,
    tsEventNs: bigint,
    payload: Payload,
    counted = true,
  ): void {
    const now = this.clock();
    if (counted) {
      const stats = this.streams.get(symbol, channel);
      stats.eventsTotal += 1n;
      stats.lastRecvMs = performance.now();
    }
    const event = create(MarketEventSchema, {
      venue: VENUE,
      symbol,
      tsEventNs,
      tsRecvNs: now,
      payload,
    });
    const events = this.pending.get(key);
    if (events === undefined) {
      this.pending.set(key, [event]);
    } else {
      events.push(event);
    }
  }

  private single(symbol: string, payload: Payload): Uint8Array {
    const now = this.clock();
    const event = create(MarketEventSchema, {
      venue: VENUE,
      symbol,
      tsEventNs: now,
      tsRecvNs: now,
      payload,
    });
    return toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { events: [event] }));
  }
}
