// Open orders of the sim venue, kept current from ListOpenOrders (polled) and the execution
// stream (immediate). Each row cancels its order; "Cancel all" asks first, with a reason (the
// cancels go through the inspector, which records it). Each opens its trace (ledger/trace).
// A row is made again only when its order changed, and the table only when its rows did: a poll
// that replaced every row under the pointer between a button's press and release lost the click
// (the release landed on a new row: no click on the button; seen in a chromium test).
// The venue's own order liquidating a position (Order.liquidation) carries the "liquidation" badge.
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { type Order, OrderStatus } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { traceButton } from "../ledger/trace";
import { label } from "../lib/format";
import { price, size } from "../lib/money";
import { confirmWithReason } from "./confirm";
import { fill, h, table, throttled } from "./dom";
import { liquidationBadge } from "./margin";

const OPEN = new Set([OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED]);

export interface OrderActions {
  cancel(order: Order): Promise<void>;
  cancelAll(reason: string): Promise<void>;
}

export class OpenOrders {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "open-orders" });
  private readonly orders = new Map<string, Order>();
  // Orders the execution stream saw end, with when: an older ListOpenOrders answer must not
  // bring them back.
  private readonly ended = new Map<string, bigint>();
  private readonly redraw = throttled(() => this.draw());
  // The row drawn for each order, with the order it was drawn from.
  private readonly drawn = new Map<string, { order: Order; row: HTMLElement }>();
  private readonly empty = h("tr", { class: "empty" }, h("td", { colspan: 8 }, "no open orders"));

  /** `tick` gives a symbol's tick size at the venue traded (undefined: not known yet). */
  constructor(
    private readonly actions: OrderActions,
    private readonly tick: (symbol: string) => string | undefined,
  ) {
    const cancelAll = h("button", { id: "cancel-all", type: "button", class: "danger" }, "Cancel all");
    cancelAll.addEventListener("click", () => void this.cancelAll());
    this.root = h(
      "div",
      { class: "orders" },
      h("header", {}, h("h3", {}, "Open orders"), cancelAll),
      table(["symbol", "side", "type", "price", "size", "filled", "status", ""], this.body),
    );
    this.draw();
  }

  /** The venue's full list of open orders. */
  replace(orders: readonly Order[]): void {
    this.orders.clear();
    for (const order of orders) {
      const endedAt = this.ended.get(order.orderId);
      if (endedAt === undefined || order.updatedNs > endedAt) this.orders.set(order.orderId, order);
    }
    this.redraw();
  }

  /** One order after a change (an execution, a cancel answer). */
  update(order: Order): void {
    const known = this.orders.get(order.orderId);
    if (known !== undefined && known.updatedNs > order.updatedNs) return;
    if (OPEN.has(order.status)) this.orders.set(order.orderId, order);
    else {
      this.orders.delete(order.orderId);
      this.ended.set(order.orderId, order.updatedNs);
    }
    this.redraw();
  }

  /** Every row drawn again (the instruments' ticks arrived). */
  retick(): void {
    this.drawn.clear();
    this.redraw();
  }

  private async cancelAll(): Promise<void> {
    const count = this.orders.size;
    const question = `Cancel all ${count} open order${count === 1 ? "" : "s"} on the sim venue?`;
    const reason = await confirmWithReason(question, "Cancel all orders", "Keep orders", "cancel all from Studio");
    if (reason !== null) await this.actions.cancelAll(reason);
  }

  private row(order: Order): HTMLElement {
    const cancel = h("button", { type: "button", class: "cancel" }, "Cancel");
    cancel.addEventListener("click", () => {
      cancel.disabled = true;
      void this.actions.cancel(order).finally(() => {
        cancel.disabled = false;
      });
    });
    const liquidation = order.liquidation ? liquidationBadge() : null;
    return h(
      "tr",
      {
        "data-order-id": order.orderId,
        "data-client-order-id": order.clientOrderId,
        "data-liquidation": String(order.liquidation),
      },
      h("td", {}, order.symbol),
      h("td", { class: order.side === Side.SELL ? "sell" : "buy" }, label(Side, order.side)),
      h("td", {}, `${order.price === "" ? "market" : "limit"}${order.reduceOnly ? " (reduce-only)" : ""}`, liquidation),
      h("td", { class: "num", "data-col": "price" }, order.price === "" ? "–" : price(order.price, this.tick(order.symbol))),
      h("td", { class: "num", "data-col": "size" }, size(order.size)),
      h("td", { class: "num", "data-col": "filled" }, size(order.filledSize)),
      h("td", {}, label(OrderStatus, order.status)),
      h("td", { class: "actions" }, cancel, traceButton(order.clientOrderId || order.orderId, "this order")),
    );
  }

  private draw(): void {
    const orders = [...this.orders.values()].sort((a, b) => (a.createdNs < b.createdNs ? 1 : -1));
    for (const id of [...this.drawn.keys()]) if (!this.orders.has(id)) this.drawn.delete(id);
    const rows = orders.length === 0 ? [this.empty] : orders.map((order) => this.rowOf(order));
    const shown = this.body.children;
    if (rows.length === shown.length && rows.every((row, i) => row === shown[i])) return;
    fill(this.body, ...rows);
  }

  private rowOf(order: Order): HTMLElement {
    const kept = this.drawn.get(order.orderId);
    if (kept !== undefined && unchanged(kept.order, order)) return kept.row;
    const row = this.row(order);
    this.drawn.set(order.orderId, { order, row });
    return row;
  }
}

/** Whether a row drawn from `before` still shows `after` (every field the row shows). */
function unchanged(before: Order, after: Order): boolean {
  return (
    before.updatedNs === after.updatedNs &&
    before.status === after.status &&
    before.filledSize === after.filledSize &&
    before.size === after.size &&
    before.price === after.price &&
    before.clientOrderId === after.clientOrderId
  );
}
