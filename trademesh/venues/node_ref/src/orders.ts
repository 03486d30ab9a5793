// The state, locks and executions of the account's orders (the sim's order manager's rules,
// docs/sim.md "The simulated exchange's orders"):
// - an accepted order emits OPEN, then one execution per fill, then its end (CANCELED, EXPIRED)
//   unless the last fill ended it (FILLED); a post-only order that would cross is REJECTED alone;
// - a limit buy locks price * size * (1 + the dearer fee rate) of the quote, a market buy the
//   cost of walking the book * (1 + the taker rate), a sell its size of the base; each fill
//   releases its share, and an order that ends holds no lock;
// - open orders are kept until they end, closed ones for a window of the last CLOSED_ORDERS_KEPT:
//   within it a client_order_id names its first order (idempotency), past it the id is free.

import type { Accounts } from "./accounts.js";
import { CLOSED_ORDERS_KEPT, MAKER_FEE_RATE, TAKER_FEE_RATE, VENUE, type SymbolSpec } from "./config.js";
import { Dec } from "./decimal.js";
import { FailedPrecondition, NotFound } from "./errors.js";
import type { Execution, Fill, Liquidity, Order, OrderRequest, OrderStatus, Side } from "./model.js";
import { snapshot } from "./model.js";

const LOCK_RATE = Dec.max(MAKER_FEE_RATE, TAKER_FEE_RATE);

class Managed {
  readonly reserveAsset: string;
  reserved = Dec.ZERO;
  // Locked per unit of size; null for a market buy, whose lock follows the fill prices.
  unitReserve: Dec | null = null;
  notional = Dec.ZERO;

  constructor(
    readonly order: Order,
    readonly instrument: SymbolSpec,
    readonly engineId: number,
  ) {
    this.reserveAsset = order.side === "buy" ? instrument.quote : instrument.base;
  }
}

// How much an order of `side` may reduce a position of signed size `position`: all of it when
// against it, nothing on a flat position or on its own side.
export function reducible(side: Side, position: Dec): Dec {
  if (position.isZero() || position.sign > 0 === (side === "buy")) {
    return Dec.ZERO;
  }
  return position.abs();
}

export class OrderManager {
  private readonly orders = new Map<string, Managed>();
  private readonly byClient = new Map<string, string>();
  private readonly open = new Map<number, Managed>();
  private readonly closed: string[] = [];
  private fillSeq = 0;
  private clientSeq = 0;

  constructor(
    private readonly accounts: Accounts,
    private readonly clock: () => bigint,
    private readonly emit: (execution: Execution) => void,
    private readonly closedKept = CLOSED_ORDERS_KEPT,
  ) {}

  // The first order placed with this client order id, while it is kept.
  duplicate(clientOrderId: string): Order | null {
    const orderId = clientOrderId === "" ? undefined : this.byClient.get(clientOrderId);
    return orderId === undefined ? null : snapshot(this.orders.get(orderId)!.order);
  }

  // The size a reduce-only order may have: trimmed to the position less what the open
  // reduce-only orders of its side already cover; FailedPrecondition when nothing is left.
  reduceOnlySize(req: OrderRequest): Dec {
    const position = this.accounts.positionSize(req.symbol);
    if (reducible(req.side, position).isZero()) {
      throw new FailedPrecondition(
        `reduce_only order would increase the position: ${req.symbol} position is ${position}`,
      );
    }
    let pending = Dec.ZERO;
    for (const managed of this.open.values()) {
      const order = managed.order;
      if (order.reduceOnly && order.symbol === req.symbol && order.side === req.side) {
        pending = pending.add(order.size.sub(order.filledSize));
      }
    }
    const available = position.abs().sub(pending);
    if (available.sign <= 0) {
      throw new FailedPrecondition(
        `reduce_only order would increase the position: open reduce_only orders already cover the ` +
          `${req.symbol} position of ${position}`,
      );
    }
    return Dec.min(req.size, available);
  }

  // Locks the funds and records the order OPEN; FailedPrecondition when funds are short.
  // `marketCost`: the quote cost of walking the book, for a market buy.
  accept(req: OrderRequest, instrument: SymbolSpec, engineId: number, marketCost: Dec): Order {
    const managed = new Managed(this.newOrder(req, engineId), instrument, engineId);
    const [unit, amount] = this.reserveFor(req, marketCost);
    this.accounts.lock(managed.reserveAsset, amount);
    managed.unitReserve = unit;
    managed.reserved = amount;
    this.record(managed);
    this.open.set(engineId, managed);
    return this.publish(managed, null);
  }

  reject(req: OrderRequest, instrument: SymbolSpec, engineId: number, reason: string): Order {
    const managed = new Managed(this.newOrder(req, engineId), instrument, engineId);
    managed.order.status = "rejected";
    managed.order.statusReason = reason;
    this.record(managed);
    const done = this.publish(managed, null);
    this.retire(managed);
    return done;
  }

  fill(engineId: number, price: Dec, size: Dec, liquidity: Liquidity, tradeId: string): void {
    const managed = this.open.get(engineId)!;
    const order = managed.order;
    const fee = price.mul(size).mul(liquidity === "maker" ? MAKER_FEE_RATE : TAKER_FEE_RATE);
    const released =
      managed.unitReserve === null ? price.mul(size).mul(Dec.ONE.add(TAKER_FEE_RATE)) : managed.unitReserve.mul(size);
    const { base, quote } = managed.instrument;
    this.accounts.settleSpotFill(order.symbol, [base, quote], order.side, price, size, fee, released);
    managed.reserved = managed.reserved.sub(released);
    order.updatedNs = this.clock();
    order.filledSize = order.filledSize.add(size);
    managed.notional = managed.notional.add(price.mul(size));
    order.averageFillPrice = managed.notional.div(order.filledSize);
    order.status = order.filledSize.eq(order.size) ? "filled" : "partially_filled";
    if (order.status === "filled") {
      this.release(managed);
    }
    this.publish(managed, this.newFill(managed, price, size, fee, liquidity, tradeId));
  }

  // Cuts an open order down to `remaining` (a reduce-only order the position no longer
  // covers): an order update with the new size and `reason`; the cut's lock is released.
  trim(engineId: number, remaining: Dec, reason: string): Order {
    const managed = this.open.get(engineId)!;
    const order = managed.order;
    const cut = order.size.sub(order.filledSize).sub(remaining);
    const releasedLock = (managed.unitReserve ?? Dec.ZERO).mul(cut);
    this.accounts.unlock(managed.reserveAsset, releasedLock);
    managed.reserved = managed.reserved.sub(releasedLock);
    order.size = order.size.sub(cut);
    order.statusReason = reason;
    order.updatedNs = this.clock();
    return this.publish(managed, null);
  }

  // Ends an open order (CANCELED, EXPIRED, REJECTED) and unlocks what it still holds.
  close(engineId: number, status: OrderStatus, reason: string): Order {
    const managed = this.open.get(engineId)!;
    managed.order.status = status;
    managed.order.statusReason = reason;
    managed.order.updatedNs = this.clock();
    this.release(managed);
    return this.publish(managed, null);
  }

  find(orderId: string, clientOrderId: string): Order {
    let id = orderId;
    if (id === "") {
      const named = this.byClient.get(clientOrderId);
      if (named === undefined) {
        throw new NotFound(`no order with client_order_id '${clientOrderId}'${this.keptNote()}`);
      }
      id = named;
    }
    const managed = this.orders.get(id);
    if (managed === undefined) {
      throw new NotFound(`no order with order_id '${id}'${this.keptNote()}`);
    }
    if (clientOrderId !== "" && managed.order.clientOrderId !== clientOrderId) {
      throw new NotFound(`order '${id}' does not have client_order_id '${clientOrderId}'`);
    }
    return snapshot(managed.order);
  }

  openOrders(symbol: string | null): Order[] {
    return [...this.open.values()]
      .filter((m) => symbol === null || m.order.symbol === symbol)
      .sort((a, b) => a.engineId - b.engineId)
      .map((m) => snapshot(m.order));
  }

  isOpen(engineId: number): boolean {
    return this.open.has(engineId);
  }

  // The side of an open reduce-only order; null for any other order.
  reduceOnlySide(engineId: number): Side | null {
    const managed = this.open.get(engineId);
    return managed !== undefined && managed.order.reduceOnly ? managed.order.side : null;
  }

  reduceOnlyOrders(symbol: string): Order[] {
    return this.openOrders(symbol).filter((order) => order.reduceOnly);
  }

  private newOrder(req: OrderRequest, engineId: number): Order {
    const now = this.clock();
    return {
      orderId: String(engineId),
      clientOrderId: req.clientOrderId === "" ? this.generatedClientId() : req.clientOrderId,
      symbol: req.symbol,
      side: req.side,
      type: req.type,
      timeInForce: req.timeInForce,
      postOnly: req.postOnly,
      reduceOnly: req.reduceOnly,
      price: req.price,
      size: req.size,
      filledSize: Dec.ZERO,
      averageFillPrice: null,
      status: "open",
      statusReason: "",
      createdNs: now,
      updatedNs: now,
    };
  }

  private generatedClientId(): string {
    for (;;) {
      this.clientSeq += 1;
      const candidate = `${VENUE}-${this.clientSeq}`;
      if (!this.byClient.has(candidate)) {
        return candidate;
      }
    }
  }

  private record(managed: Managed): void {
    this.orders.set(managed.order.orderId, managed);
    this.byClient.set(managed.order.clientOrderId, managed.order.orderId);
  }

  // [lock per unit of size or null, amount to lock now].
  private reserveFor(req: OrderRequest, marketCost: Dec): [Dec | null, Dec] {
    if (req.side === "sell") {
      return [Dec.ONE, req.size];
    }
    if (req.price === null) {
      return [null, marketCost.mul(Dec.ONE.add(TAKER_FEE_RATE))];
    }
    const unit = req.price.mul(Dec.ONE.add(LOCK_RATE));
    return [unit, unit.mul(req.size)];
  }

  private release(managed: Managed): void {
    if (!managed.reserved.isZero()) {
      this.accounts.unlock(managed.reserveAsset, managed.reserved);
      managed.reserved = Dec.ZERO;
    }
    this.open.delete(managed.engineId);
    this.retire(managed);
  }

  // The order closed: it joins the window of kept closed orders, pushing the oldest out.
  private retire(managed: Managed): void {
    this.closed.push(managed.order.orderId);
    while (this.closed.length > this.closedKept) {
      const dropped = this.orders.get(this.closed.shift()!)!;
      this.orders.delete(dropped.order.orderId);
      if (this.byClient.get(dropped.order.clientOrderId) === dropped.order.orderId) {
        this.byClient.delete(dropped.order.clientOrderId);
      }
    }
  }

  private keptNote(): string {
    return ` (${VENUE} keeps open orders and the last ${this.closedKept} closed ones)`;
  }

  private newFill(managed: Managed, price: Dec, size: Dec, fee: Dec, liquidity: Liquidity, tradeId: string): Fill {
    this.fillSeq += 1;
    const order = managed.order;
    return {
      fillId: String(this.fillSeq),
      orderId: order.orderId,
      clientOrderId: order.clientOrderId,
      symbol: order.symbol,
      side: order.side,
      price,
      size,
      fee,
      feeAsset: managed.instrument.quote,
      liquidity,
      tradeId,
      tsEventNs: order.updatedNs,
    };
  }

  private publish(managed: Managed, fill: Fill | null): Order {
    const order = snapshot(managed.order);
    this.emit({ tsEventNs: order.updatedNs, order, fill });
    return order;
  }
}
