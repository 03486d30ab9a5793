// The live market of one selection (venue, symbol, timeframe): the bridge's LiveData stream of
// bars, trades and book (and, for a derivative, its mark, funding, open interest and liquidations),
// plus the venue's candle history, merged into a CandleSeries, an OrderBook and DerivativeFigures. History is loaded once the subscription is in place (its first message), so no
// bar closes unseen between the two; a resubscription starts over the same way.
import { type Clients, unary } from "../api/clients";
import type { LiveStreams } from "../api/live";
import type { Bar } from "../gen/trademesh/bus/v1/bus_pb";
import { Kind, LiveData, type SubscribeResponse } from "../gen/trademesh/livedata/v1/livedata_pb";
import {
  type Candle,
  type Liquidation,
  type MarketEvent,
  OverflowPolicy,
  type Trade,
} from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { follow, type LoopContext } from "../lib/loop";
import { OrderBook } from "./book";
import { type CandlePoint, CandleSeries, type Change } from "./candles";
import { type DerivativeFigures, DerivativesState } from "./derivatives";
import type { TimeframeOption } from "./timeframes";

const NS_PER_S = 1_000_000_000n;
// Candles of history shown when a selection opens.
const HISTORY_CANDLES = 300n;

export interface Selection {
  venue: string;
  symbol: string;
  timeframe: TimeframeOption;
  /** A perpetual, future or option: its derivatives streams are followed too. */
  derivative: boolean;
}

// What a derivative's selection follows besides the market's kinds.
const DERIVATIVE_KINDS = [Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST, Kind.LIQUIDATIONS];

/** Where the feed's state goes; `candles` with change null means "redraw everything". */
export interface FeedView {
  restart(candles: CandleSeries, book: OrderBook): void;
  candles(candles: CandleSeries, change: Change | null): void;
  book(book: OrderBook): void;
  trade(tsNs: bigint, trade: Trade): void;
  /** A derivative's figures changed (drawn once per message). */
  derivatives(figures: DerivativeFigures): void;
  /** A liquidation the venue published in the symbol's market. */
  liquidation(tsNs: bigint, liquidation: Liquidation): void;
}

function point(open_time_ns: bigint, c: Bar | Candle, closed: boolean): CandlePoint {
  const time = Number(open_time_ns / NS_PER_S);
  return { time, open: c.open, high: c.high, low: c.low, close: c.close, closed };
}

async function history(clients: Clients, selection: Selection, signal: AbortSignal): Promise<CandlePoint[]> {
  const intervalNs = BigInt(selection.timeframe.seconds) * NS_PER_S;
  const startNs = BigInt(Date.now()) * 1_000_000n - HISTORY_CANDLES * intervalNs;
  const reply = await clients.marketData.getCandles(
    { symbol: selection.symbol, timeframe: selection.timeframe.value, startNs, endNs: 0n, limit: 0 },
    unary(signal, selection.venue),
  );
  return reply.candles.map((c) => point(c.openTimeNs, c, c.closed));
}

class FeedState {
  readonly candles: CandleSeries;
  readonly book = new OrderBook();
  private readonly derivatives = new DerivativesState();
  private derivativesChanged = false;
  // One message's candle changes, drawn together: a busy symbol's trades move one candle many
  // times per message, and the chart needs it drawn once.
  private readonly changed = new Map<number, Change>();
  private redrawAll = false;

  constructor(
    private readonly selection: Selection,
    private readonly view: FeedView,
  ) {
    this.candles = new CandleSeries(selection.timeframe.seconds, selection.timeframe.offsetS);
    view.restart(this.candles, this.book);
  }

  loadHistory(points: CandlePoint[]): void {
    for (const p of points) this.candles.put(p);
    this.view.candles(this.candles, null);
  }

  take(message: SubscribeResponse): void {
    for (const bar of message.bars) {
      if (bar.timeframe !== this.selection.timeframe.value || bar.symbol !== this.selection.symbol) continue;
      this.note(this.candles.put(point(bar.openTimeNs, bar, true)));
    }
    let bookChanged = false;
    for (const event of message.events) {
      if (event.symbol === this.selection.symbol) bookChanged = this.event(event) || bookChanged;
    }
    this.drawCandles();
    if (bookChanged) this.view.book(this.book);
    if (this.derivativesChanged) this.view.derivatives(this.derivatives.figures);
    this.derivativesChanged = false;
  }

  private note(change: Change): void {
    if (change.kind === "reset") this.redrawAll = true;
    else if (change.kind !== "none") this.changed.set(change.point.time, change);
  }

  private drawCandles(): void {
    if (this.redrawAll) this.view.candles(this.candles, null);
    else {
      // Oldest first: each change was "last" or "in place" when made, and stays drawable in order.
      const changes = [...this.changed.entries()].sort(([a], [b]) => a - b);
      for (const [, change] of changes) this.view.candles(this.candles, change);
    }
    this.changed.clear();
    this.redrawAll = false;
  }

  /** Applies one market event; true when it changed the book. */
  private event(event: MarketEvent): boolean {
    const payload = event.payload;
    switch (payload.case) {
      case "trade":
        this.note(this.candles.trade(event.tsEventNs, payload.value.price));
        this.view.trade(event.tsEventNs, payload.value);
        return false;
      case "bookSnapshot":
        this.book.snapshot(payload.value.sequence, payload.value.bids, payload.value.asks);
        return true;
      case "bookDelta":
        this.book.delta(payload.value.sequence, payload.value.bids, payload.value.asks);
        return true;
      case "liquidation":
        this.view.liquidation(event.tsEventNs, payload.value);
        return false;
      default:
        this.derivativesChanged = this.derivatives.apply(event) || this.derivativesChanged;
        return false;
    }
  }
}

/** Follows the selection until ctx.signal aborts, resubscribing after every end or failure. */
export function runFeed(
  ctx: LoopContext,
  clients: Clients,
  live: LiveStreams,
  selection: Selection,
  view: FeedView,
): Promise<void> {
  let state: FeedState | null = null;
  const request = {
    venues: [selection.venue],
    symbols: [selection.symbol],
    kinds: [Kind.BARS, Kind.TRADES, Kind.BOOK, ...(selection.derivative ? DERIVATIVE_KINDS : [])],
    timeframes: [selection.timeframe.value],
    // A tab that falls behind skips ahead (a gap, then a fresh book) instead of being cut off.
    overflowPolicy: OverflowPolicy.CONFLATE,
  };
  return follow(
    ctx,
    (signal, opened) => live.subscribe(LiveData.method.subscribe, request, { signal, onAdded: opened }),
    async (message, index) => {
      // Fresh state once a new subscription delivers: until then the last data stays in view.
      if (index === 0) {
        state = new FeedState(selection, view);
        state.loadHistory(await history(clients, selection, ctx.signal));
      }
      state?.take(message);
    },
  );
}
