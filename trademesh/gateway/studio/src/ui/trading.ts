// Trading on the sim venue (or an account of it), or on a paper venue (a live venue's market, orders matched by the
// sim's engine: docs/paper.md), marked PAPER: the order ticket, open orders, fills and positions. Orders and
// cancels go through the inspector (a manual intent, risk-checked like any other: it alone
// places and cancels orders at a venue). Executions come live from TradeFlow.StreamExecutions;
// open orders and positions are also polled, so anything the stream missed while reconnecting
// shows up within seconds.
import { splitVenue } from "../accounts/model";
import { type Clients, unary } from "../api/clients";
import { classify } from "../api/errors";
import { cancelAllOrders, cancelOrder, submitIntent } from "../api/inspector";
import { type Instruments, instrumentsOf } from "../api/instruments";
import type { LiveStreams } from "../api/live";
import type { SubmitIntentResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { type Order, type StreamExecutionsResponse, TradeFlow } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import type { Connection } from "../lib/connection";
import { childController, follow, type LoopContext, type PanelStatus, poll } from "../lib/loop";
import { fill, h, panel, showStatus } from "./dom";
import { Fills } from "./fills";
import { OpenOrders } from "./orders";
import { Positions } from "./positions";
import { type OrderDraft, OrderTicket } from "./ticket";

// Orders from Studio go to the sim venue (or an account of it, "sim.desk-a": docs/accounts.md)
// or a paper venue only: never real money.
export const SIM_VENUE = "sim";

/** True for the sim venue and its accounts ("sim", "sim.desk-a"). */
export function isSimVenue(venue: string): boolean {
  return splitVenue(venue).exchange === SIM_VENUE;
}
const REFRESH_MS = 3000;
// Recorded on the inspector's risk event of a row's cancel.
const CANCEL_REASON = "cancelled in Studio's orders view";
// How often and how long the ticket asks the venue for an order whose answer was pending.
const FOLLOW_EVERY_MS = 500;
const FOLLOW_FOR_MS = 30_000;

export class TradingDesk {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body = h("div", { class: "desk" });
  private readonly message = h("p", { id: "desk-message", class: "message", role: "status" });
  private readonly ticket = new OrderTicket(
    (draft, traceId) => this.place(draft, traceId),
    (clientOrderId) => this.followOrder(clientOrderId),
  );
  private readonly orders: OpenOrders;
  private readonly fills: Fills;
  private readonly positions: Positions;
  // The traded venue's ticks: prices at them (lib/money).
  private readonly instruments: Instruments;
  private controller: AbortController | null = null;
  private venue = "";
  private symbol = "";
  // The paper venues registered (the health board's poll): Studio trades on them too.
  private paper = new Set<string>();
  // The stream's and the poll's last status (see context()).
  private readonly statuses: Record<"stream" | "poll", PanelStatus> = {
    stream: { tone: "ok", text: "" },
    poll: { tone: "ok", text: "" },
  };

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly appSignal: AbortSignal,
  ) {
    ({ root: this.root, status: this.status } = panel("Orders (sim or paper)", "trading", this.message, this.body));
    this.instruments = instrumentsOf(clients, appSignal);
    const tick = (symbol: string): string | undefined => this.instruments.tick(this.venue, symbol);
    this.orders = new OpenOrders({ cancel: (o) => this.cancel(o), cancelAll: (r) => this.cancelAll(r) }, tick);
    this.fills = new Fills(tick);
    this.positions = new Positions(tick);
    this.instruments.onLoad(() => {
      this.orders.retick();
      this.fills.retick();
    }, appSignal);
  }

  /** The registered venues that paper-trade; the selection is looked at again when it changed. */
  setPaperVenues(names: string[]): void {
    const paper = new Set(names);
    if ([...paper].sort().join() === [...this.paper].sort().join()) return;
    this.paper = paper;
    const venue = this.venue;
    this.venue = "";
    if (venue !== "") this.select(venue, this.symbol);
  }

  /** Follows the market view's selection: trading runs while the sim or a paper venue is selected. */
  select(venue: string, symbol: string): void {
    this.symbol = symbol;
    this.ticket.setSymbol(symbol);
    if (venue === this.venue) return;
    this.venue = venue;
    this.controller?.abort();
    this.controller = null;
    this.ticket.setPaper(this.paper.has(venue));
    if (!isSimVenue(venue) && !this.paper.has(venue)) {
      const notice = `Orders from Studio go to the ${SIM_VENUE} venue or a paper venue only; select one above.`;
      fill(this.body, h("p", { class: "empty" }, notice));
      showStatus(this.status, { tone: "ok", text: "" });
      return;
    }
    fill(this.body, this.ticket.root, this.orders.root, this.fills.root, this.positions.root);
    this.controller = childController(this.appSignal);
    this.start(this.controller.signal);
  }

  setPrice(price: string): void {
    this.ticket.setPrice(price);
  }

  private context(signal: AbortSignal, which: "stream" | "poll"): LoopContext {
    return {
      signal,
      connection: this.connection,
      onStatus: (status) => {
        this.statuses[which] = status;
        // A trouble of either shows; else "live" (the executions stream may stay silent, headers
        // included, until the first execution, so the poll is what proves the venue answers).
        const { stream, poll: polled } = this.statuses;
        const trouble = [stream, polled].find((s) => s.tone !== "ok");
        showStatus(this.status, trouble ?? { tone: "ok", text: polled.text || stream.text });
      },
    };
  }

  private start(signal: AbortSignal): void {
    void follow(
      this.context(signal, "stream"),
      (signal, opened) =>
        this.live.subscribe(
          TradeFlow.method.streamExecutions,
          { symbols: [] },
          { signal, onAdded: opened, target: this.venue },
        ),
      (message) => this.take(message),
    );
    void poll(this.context(signal, "poll"), REFRESH_MS, () => this.refresh(signal));
  }

  private take(message: StreamExecutionsResponse): void {
    let filled = false;
    for (const execution of message.executions) {
      if (execution.order !== undefined) this.orders.update(execution.order);
      if (execution.fill !== undefined) {
        this.fills.add(execution.fill, execution.order?.liquidation === true);
        filled = true;
      }
    }
    if (filled && this.controller !== null) void this.refreshPositions(this.controller.signal).catch(() => undefined);
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const open = await this.clients.tradeFlow.listOpenOrders({ symbol: "" }, unary(signal, this.venue));
    this.orders.replace(open.orders);
    await this.refreshPositions(signal);
  }

  private async refreshPositions(signal: AbortSignal): Promise<void> {
    const reply = await this.clients.tradeFlow.getPositions({ symbol: "" }, unary(signal, this.venue));
    this.positions.show(reply.positions);
  }

  private async place(draft: OrderDraft, traceId: string): Promise<SubmitIntentResponse> {
    const intent = {
      venue: this.venue,
      symbol: draft.symbol,
      side: draft.side,
      size: draft.size,
      entryType: draft.type,
      entryPrice: draft.price,
      timeInForce: draft.timeInForce,
      stopLoss: draft.stopLoss,
      takeProfit: draft.takeProfit,
    };
    const reply = await submitIntent(this.clients, intent, this.appSignal, traceId);
    if (reply.order !== undefined && reply.order.orderId !== "") this.orders.update(reply.order);
    return reply;
  }

  /**
   * An order the inspector sent but whose venue answer it had not heard when it answered: asked
   * of the venue (GetOrder by its client order id) every FOLLOW_EVERY_MS until it knows it, for
   * at most FOLLOW_FOR_MS. Null when it did not in that time, or the page moved on.
   */
  private async followOrder(clientOrderId: string): Promise<Order | null> {
    const venue = this.venue;
    const deadline = Date.now() + FOLLOW_FOR_MS;
    while (Date.now() < deadline && !this.appSignal.aborted && this.venue === venue) {
      try {
        const reply = await this.clients.tradeFlow.getOrder({ clientOrderId }, unary(this.appSignal, venue));
        if (reply.order !== undefined && reply.order.orderId !== "") {
          this.orders.update(reply.order);
          return reply.order;
        }
      } catch {
        // Not known yet (NOT_FOUND), or the venue busy: asked again until the deadline.
      }
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
    }
    return null;
  }

  private async cancel(order: Order): Promise<void> {
    try {
      const reply = await cancelOrder(this.clients, this.venue, order.clientOrderId, CANCEL_REASON, this.appSignal);
      if (reply !== null && reply.orderId !== "") this.orders.update(reply);
      this.say("");
    } catch (error) {
      this.say(`cancel ${order.orderId}: ${classify(error).message}`);
    }
  }

  private async cancelAll(reason: string): Promise<void> {
    try {
      const cancelled = await cancelAllOrders(this.clients, this.venue, reason, this.appSignal);
      this.say(`canceled ${cancelled} order${cancelled === 1 ? "" : "s"}`);
      // The venue's list shows what is left now (the cancels' updates also come on the stream).
      if (this.controller !== null) await this.refresh(this.controller.signal).catch(() => undefined);
    } catch (error) {
      this.say(`cancel all: ${classify(error).message}`);
    }
  }

  private say(text: string): void {
    // One line (styles.css: the desk must not move); the whole of a long one on hover.
    this.message.textContent = text;
    this.message.title = text;
  }
}
