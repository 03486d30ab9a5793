// The exchange: one book per symbol, the account's orders and balances behind one entry point.
//
// Two kinds of callers share the books: the account's orders (exact decimals in, Orders out,
// from TradeFlow) and the seeded market's makers and takers (ticks and lots). A listener hears,
// per operation: each trade in matching order, then one call with every level the operation
// changed, then the account's executions; a cancel or a maker's own change makes its own level
// call. Applied in order to a copy of the book, the level changes reproduce it exactly.
//
// Reduce-only orders never increase or flip the position (as the sim, docs/venues.md): trimmed
// at placement to the position less what the other reduce-only orders of their side cover;
// while a synthetic taker sweeps, each fills no more than the position at that fill (the book's
// maker cap); once fills have moved the position, each resting one is trimmed to what is left
// of it, or CANCELED with nothing left.

import { Accounts } from "./accounts.js";
import { OrderBook, MatchResult, SYNTHETIC, USER, type LevelChange, type Match } from "./book.js";
import { BALANCES, PRICE_BAND_RATIO, SYMBOLS, type SymbolSpec } from "./config.js";
import { Dec } from "./decimal.js";
import { FailedPrecondition, InvalidArgument, NotFound } from "./errors.js";
import type { Balance, Execution, Order, OrderRequest, Position, Side, TimeInForce } from "./model.js";
import { isOpen, sign } from "./model.js";
import { OrderManager, reducible } from "./orders.js";

export interface ExchangeListener {
  onTrade(symbol: string, tradeId: string, priceTicks: bigint, lots: bigint, takerSide: Side, tsNs: bigint): void;
  onLevels(symbol: string, changes: readonly LevelChange[]): void;
  onExecution(execution: Execution): void;
}

const POST_ONLY_REASON = "post-only order would take liquidity (it crosses the book)";
const REDUCED_AWAY = "reduce-only order canceled: the position it reduces is closed";

// Integer units of a decimal step (ticks of the tick size, lots of the lot size).
export class Scale {
  constructor(readonly step: Dec) {}

  units(value: Dec): bigint {
    return value.unitsOf(this.step);
  }

  value(units: bigint): Dec {
    return this.step.mul(Dec.int(units));
  }

  text(units: bigint): string {
    return this.value(units).toString();
  }
}

export class Market {
  readonly book: OrderBook;
  readonly price: Scale;
  readonly size: Scale;
  tradeSeq = 0;
  lastTrade: bigint | null = null;

  constructor(readonly instrument: SymbolSpec) {
    this.book = new OrderBook(instrument.symbol);
    this.price = new Scale(instrument.tickSize);
    this.size = new Scale(instrument.lotSize);
  }

  // The price band's reference in ticks (the mid, else the last trade, else the one quoted
  // side), with where it comes from; null for a market with none of them.
  reference(): [Dec, string] | null {
    const bid = this.book.bestBid();
    const ask = this.book.bestAsk();
    if (bid !== null && ask !== null) {
      return [Dec.int(bid + ask).div(Dec.int(2)), "the book's mid"];
    }
    if (this.lastTrade !== null) {
      return [Dec.int(this.lastTrade), "the last trade"];
    }
    const only = bid ?? ask;
    return only === null ? null : [Dec.int(only), "the only quoted side's best price"];
  }
}

export class Exchange {
  readonly markets = new Map<string, Market>();
  readonly accounts: Accounts;
  readonly orders: OrderManager;
  private lastId = 0;

  constructor(
    private readonly listener: ExchangeListener,
    private readonly clock: () => bigint,
    symbols: readonly SymbolSpec[] = SYMBOLS,
  ) {
    this.accounts = new Accounts(BALANCES);
    for (const spec of symbols) {
      this.markets.set(spec.symbol, new Market(spec));
      this.accounts.addAsset(spec.base);
      this.accounts.addAsset(spec.quote);
    }
    this.orders = new OrderManager(this.accounts, clock, (execution) => listener.onExecution(execution));
  }

  market(symbol: string): Market {
    const market = this.markets.get(symbol);
    if (market === undefined) {
      throw new NotFound(`unknown symbol '${symbol}'`);
    }
    return market;
  }

  // ---- the account's orders

  // [order, duplicate]: a known client_order_id answers its first order, duplicate.
  place(req: OrderRequest): [Order, boolean] {
    const first = this.orders.duplicate(req.clientOrderId);
    if (first !== null) {
      return [first, true];
    }
    const market = this.market(req.symbol);
    this.checkBand(market, req.price);
    const placed = req.reduceOnly ? { ...req, size: this.orders.reduceOnlySize(req) } : req;
    return [this.placeNew(market, placed), false];
  }

  cancel(orderId: string, clientOrderId: string, reason: string): Order {
    const order = this.orders.find(orderId, clientOrderId);
    if (!isOpen(order.status)) {
      throw new FailedPrecondition(`order ${order.orderId} is ${order.status}, not open`);
    }
    return this.cancelOpen(order, reason);
  }

  cancelAll(symbol: string | null, reason: string): Order[] {
    return this.orders.openOrders(symbol).map((order) => this.cancelOpen(order, reason));
  }

  get(orderId: string, clientOrderId: string): Order {
    return this.orders.find(orderId, clientOrderId);
  }

  openOrders(symbol: string | null): Order[] {
    return this.orders.openOrders(symbol);
  }

  balances(): Balance[] {
    return this.accounts.balances();
  }

  positions(symbol: string | null): Position[] {
    return symbol === null ? this.accounts.positions() : [this.accounts.position(symbol)];
  }

  // InvalidArgument on `price` when a limit price lies outside the band.
  checkBand(market: Market, price: Dec | null, field = "price"): void {
    const reference = market.reference();
    if (reference === null || price === null || price.sign <= 0) {
      return;
    }
    const [ref, source] = reference;
    const tick = market.instrument.tickSize;
    const ticks = market.price.units(price);
    const low = ref.div(PRICE_BAND_RATIO).ceilTo(Dec.ONE);
    const high = ref.mul(PRICE_BAND_RATIO).floorTo(Dec.ONE);
    const lowest = low > 1n ? low : 1n;
    if (ticks >= lowest && ticks <= high) {
      return;
    }
    const text = (units: Dec): string => units.mul(tick).toString();
    throw InvalidArgument.field(
      field,
      `${text(Dec.int(ticks))} is outside the price band ${text(Dec.int(lowest))} .. ${text(Dec.int(high))} ` +
        `(the reference ${text(ref)}, ${source}, divided or multiplied by ${PRICE_BAND_RATIO})`,
    );
  }

  // ---- the seeded market's makers and takers (ticks and lots)

  // A synthetic order (price null: a market order); its engine id.
  submitSynthetic(symbol: string, side: Side, priceTicks: bigint | null, lots: bigint, tif: TimeInForce): number {
    const market = this.market(symbol);
    const orderId = this.nextId();
    const cap = (makerId: number, fills: readonly Match[]): bigint | null =>
      this.reduceOnlyRoom(market, makerId, fills);
    const result = market.book.submit(orderId, SYNTHETIC, side, priceTicks, lots, tif, false, cap);
    this.publish(market, side, SYNTHETIC, result);
    return orderId;
  }

  // Lots removed; 0 when the order no longer rests or is not synthetic.
  cancelSynthetic(symbol: string, orderId: number): bigint {
    const book = this.market(symbol).book;
    const resting = book.resting(orderId);
    if (resting === undefined || resting.owner !== SYNTHETIC) {
      return 0n;
    }
    const [lots, change] = book.cancel(orderId);
    if (change !== null) {
      this.listener.onLevels(symbol, [change]);
    }
    return lots;
  }

  // ---- internals

  private nextId(): number {
    this.lastId += 1;
    return this.lastId;
  }

  private placeNew(market: Market, req: OrderRequest): Order {
    const lots = market.size.units(req.size);
    const ticks = req.price === null ? null : market.price.units(req.price);
    const orderId = this.nextId();
    if (req.postOnly && ticks !== null && market.book.wouldCross(req.side, ticks)) {
      return this.orders.reject(req, market.instrument, orderId, POST_ONLY_REASON);
    }
    this.orders.accept(req, market.instrument, orderId, this.marketBuyCost(market, req, lots));
    const result = market.book.submit(orderId, USER, req.side, ticks, lots, req.timeInForce, req.postOnly);
    this.publish(market, req.side, USER, result);
    return this.conclude(orderId, req, result);
  }

  // What a market buy would pay walking the book now (its lock is taken off this).
  private marketBuyCost(market: Market, req: OrderRequest, lots: bigint): Dec {
    if (req.type !== "market" || req.side !== "buy") {
      return Dec.ZERO;
    }
    return market.book
      .preview(req.side, null, lots)
      .reduce((cost, [price, taken]) => cost.add(market.price.value(price).mul(market.size.value(taken))), Dec.ZERO);
  }

  private conclude(orderId: number, req: OrderRequest, result: MatchResult): Order {
    const id = String(orderId);
    if (!this.orders.isOpen(orderId)) {
      return this.orders.find(id, "");
    }
    if (result.rejectedPostOnly) {
      return this.orders.close(orderId, "rejected", POST_ONLY_REASON);
    }
    if (result.expired > 0n) {
      return this.orders.close(orderId, "expired", expiryReason(req, result));
    }
    return this.orders.find(id, "");
  }

  private cancelOpen(order: Order, reason: string): Order {
    const engineId = Number(order.orderId);
    const [, change] = this.market(order.symbol).book.cancel(engineId);
    if (change !== null) {
      this.listener.onLevels(order.symbol, [change]);
    }
    return this.orders.close(engineId, "canceled", reason);
  }

  private publish(market: Market, takerSide: Side, takerOwner: number, result: MatchResult): void {
    const symbol = market.instrument.symbol;
    if (result.fills.length === 0) {
      if (result.changes.length > 0) {
        this.listener.onLevels(symbol, result.changes);
      }
      if (result.trimmed.length > 0) {
        this.keepReduceOnlyWithin(market, result.trimmed);
      }
      return;
    }
    const tsNs = this.clock();
    const tradeIds = result.fills.map((fill) => {
      market.tradeSeq += 1;
      const tradeId = String(market.tradeSeq);
      this.listener.onTrade(symbol, tradeId, fill.price, fill.lots, takerSide, tsNs);
      return tradeId;
    });
    market.lastTrade = result.fills[result.fills.length - 1]!.price;
    this.listener.onLevels(symbol, result.changes);
    const users = takerOwner === USER || result.fills.some((fill) => fill.makerOwner === USER);
    if (users) {
      result.fills.forEach((fill, index) => this.routeUserFill(market, takerOwner, fill, tradeIds[index]!));
    }
    if (users || result.trimmed.length > 0) {
      this.keepReduceOnlyWithin(market, result.trimmed);
    }
  }

  private routeUserFill(market: Market, takerOwner: number, fill: Match, tradeId: string): void {
    const price = market.price.value(fill.price);
    const size = market.size.value(fill.lots);
    if (fill.makerOwner === USER) {
      this.orders.fill(fill.makerId, price, size, "maker", tradeId);
    }
    if (takerOwner === USER) {
      this.orders.fill(fill.takerId, price, size, "taker", tradeId);
    }
  }

  // The book's maker cap while a synthetic taker sweeps: the lots a reduce-only maker may fill
  // now (the position less what the sweep's account fills took off it); null for others.
  private reduceOnlyRoom(market: Market, makerId: number, fills: readonly Match[]): bigint | null {
    const side = this.orders.reduceOnlySide(makerId);
    if (side === null) {
      return null;
    }
    const swept = fills.filter((fill) => fill.makerOwner === USER).reduce((total, fill) => total + fill.lots, 0n);
    const position = this.accounts.positionSize(market.instrument.symbol).add(market.size.value(sign(side) * swept));
    return market.size.units(reducible(side, position));
  }

  // After fills: each reduce-only order in the book (or one the sweep's cap took out of it) is
  // left with no more than the position it reduces: trimmed, or CANCELED.
  private keepReduceOnlyWithin(market: Market, trimmed: readonly number[]): void {
    const symbol = market.instrument.symbol;
    const position = this.accounts.positionSize(symbol);
    for (const order of this.orders.reduceOnlyOrders(symbol)) {
      const engineId = Number(order.orderId);
      const resting = market.book.resting(engineId);
      if (resting === undefined && !trimmed.includes(engineId)) {
        continue; // a reduce-only taker still at work: its own end concludes it
      }
      const inBook = resting === undefined ? Dec.ZERO : market.size.value(resting.remaining);
      const remaining = order.size.sub(order.filledSize);
      const keep = Dec.min(Dec.min(remaining, inBook), reducible(order.side, position));
      if (inBook.gt(keep)) {
        const [, change] = market.book.reduce(engineId, market.size.units(inBook.sub(keep)));
        if (change !== null) {
          this.listener.onLevels(symbol, [change]);
        }
      }
      if (keep.isZero()) {
        this.orders.close(engineId, "canceled", REDUCED_AWAY);
      } else if (keep.lt(remaining)) {
        this.orders.trim(engineId, keep, `reduce-only order trimmed to the ${symbol} position of ${position}`);
      }
    }
  }
}

function expiryReason(req: OrderRequest, result: MatchResult): string {
  if (result.fokKilled) {
    return "fill-or-kill order could not be filled completely";
  }
  if (req.type === "market") {
    return "market order remainder expired: not enough liquidity";
  }
  return "immediate-or-cancel remainder expired";
}
