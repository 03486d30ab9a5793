// The order ticket for the sim venue or a paper venue (marked PAPER): limit or market, size and price as the user typed them
// (decimal strings, checked but never converted), an optional stop-loss and take-profit, then
// Buy or Sell. It submits a manual intent to the inspector, which checks it like any other and
// places the order when it is allowed; the verdict shows below (ui/verdict).
import { classify } from "../api/errors";
import { newTraceId } from "../api/trace";
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { RiskAction, type SubmitIntentResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { type Order, OrderType, TimeInForce } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { isPositiveDecimal } from "../lib/decimal";
import { logsHash } from "../logs/filters";
import { label } from "../lib/format";
import { fill, h } from "./dom";
import { reasonItems, verdictText } from "./verdict";

export interface OrderDraft {
  symbol: string;
  side: Side;
  type: OrderType;
  size: string;
  /** The limit price; "" for a market order. */
  price: string;
  timeInForce: TimeInForce;
  /** "" for the inspector's default distance. */
  stopLoss: string;
  takeProfit: string;
}

function decimalInput(id: string, placeholder: string): HTMLInputElement {
  return h("input", { id, inputmode: "decimal", placeholder, autocomplete: "off" });
}

function option(value: string, text: string): HTMLOptionElement {
  return h("option", { value }, text);
}

export class OrderTicket {
  readonly root: HTMLElement;
  private symbol = "";
  private readonly type = h("select", { id: "ticket-type" }, option("limit", "Limit"), option("market", "Market"));
  private readonly size = decimalInput("ticket-size", "size");
  private readonly price = decimalInput("ticket-price", "price");
  private readonly stopLoss = decimalInput("ticket-stop-loss", "default");
  private readonly takeProfit = decimalInput("ticket-take-profit", "default");
  private readonly tif = h(
    "select",
    { id: "ticket-tif" },
    option("gtc", "GTC"),
    option("ioc", "IOC"),
    option("fok", "FOK"),
  );
  private readonly message = h("p", { id: "ticket-message", class: "message", role: "status" });
  private readonly reasons = h("ul", { id: "ticket-reasons", class: "reasons" });
  private readonly title = h("h3", {}, "New order");
  private readonly paperBadge = h(
    "span",
    { id: "ticket-paper", class: "badge paper", title: "paper trading: matched against the venue's book, no real order" },
    "PAPER",
  );
  private paper = false;

  // The last command's trace: a link to its log lines (the inspector's verdict, the venue's order).
  private readonly trace = h("a", { id: "ticket-trace", class: "trace-link", hidden: "" }, "log lines");

  /**
   * `submit` sends the intent; `follow` asks the venue for an order the inspector allowed but had
   * yet to hear the venue's answer for (null when none came in time).
   */
  constructor(
    private readonly submit: (draft: OrderDraft, traceId: string) => Promise<SubmitIntentResponse>,
    private readonly follow: (clientOrderId: string) => Promise<Order | null> = async () => null,
  ) {
    const buy = h("button", { id: "ticket-buy", type: "button", class: "buy" }, "Buy");
    const sell = h("button", { id: "ticket-sell", type: "button", class: "sell" }, "Sell");
    buy.addEventListener("click", () => void this.send(Side.BUY));
    sell.addEventListener("click", () => void this.send(Side.SELL));
    this.type.addEventListener("change", () => {
      this.price.disabled = this.type.value === "market";
    });
    this.root = h(
      "form",
      { id: "ticket", class: "ticket" },
      this.title,
      h("label", {}, "Type", this.type),
      h("label", {}, "Size", this.size),
      h("label", {}, "Price", this.price),
      h("label", {}, "Time in force", this.tif),
      h("label", {}, "Stop-loss", this.stopLoss),
      h("label", {}, "Take-profit", this.takeProfit),
      h("div", { class: "sides" }, buy, sell),
      h("p", { class: "hint" }, "Checked by the inspector's risk policies before it reaches the venue."),
      this.message,
      this.reasons,
      this.trace,
    );
    this.root.addEventListener("submit", (event) => event.preventDefault());
  }

  setSymbol(symbol: string): void {
    this.symbol = symbol;
    this.drawTitle();
  }

  /** Whether the venue it sends to paper-trades (the PAPER mark beside the title). */
  setPaper(paper: boolean): void {
    this.paper = paper;
    this.drawTitle();
  }

  private drawTitle(): void {
    fill(this.title, `New order · ${this.symbol}`, ...(this.paper ? [this.paperBadge] : []));
  }

  /** A price picked elsewhere (the book ladder). */
  setPrice(price: string): void {
    this.price.value = price;
  }

  private draft(side: Side): OrderDraft | string {
    const market = this.type.value === "market";
    const size = this.size.value.trim();
    const price = market ? "" : this.price.value.trim();
    const stopLoss = this.stopLoss.value.trim();
    const takeProfit = this.takeProfit.value.trim();
    if (this.symbol === "") return "pick a symbol first";
    if (!isPositiveDecimal(size)) return `size ${JSON.stringify(size)} is not a positive decimal`;
    if (!market && !isPositiveDecimal(price)) return `price ${JSON.stringify(price)} is not a positive decimal`;
    for (const [name, value] of [["stop-loss", stopLoss], ["take-profit", takeProfit]] as const) {
      if (value !== "" && !isPositiveDecimal(value)) {
        return `${name} ${JSON.stringify(value)} is not a positive decimal`;
      }
    }
    const tif = { gtc: TimeInForce.GTC, ioc: TimeInForce.IOC, fok: TimeInForce.FOK }[this.tif.value];
    return {
      symbol: this.symbol,
      side,
      type: market ? OrderType.MARKET : OrderType.LIMIT,
      size,
      price,
      // GTC is meaningless for a market order; the venue's default (IOC) applies.
      timeInForce: market ? TimeInForce.UNSPECIFIED : (tif ?? TimeInForce.UNSPECIFIED),
      stopLoss,
      takeProfit,
    };
  }

  private async send(side: Side): Promise<void> {
    const draft = this.draft(side);
    if (typeof draft === "string") {
      this.trace.hidden = true;
      this.say("error", draft);
      return;
    }
    this.say("", `submitting ${label(Side, side)} to the inspector…`);
    const traceId = newTraceId();
    this.showTrace(traceId);
    try {
      const reply = await this.submit(draft, traceId);
      const verdict = verdictText(reply);
      this.say(verdict.tone, verdict.text);
      this.message.dataset.action = label(RiskAction, reply.action);
      this.message.dataset.intentId = reply.intentId;
      if (reply.action === RiskAction.ALLOW) {
        this.message.dataset.clientOrderId = reply.clientOrderId;
        if (reply.order !== undefined && reply.order.orderId !== "") this.message.dataset.orderId = reply.order.orderId;
      }
      fill(this.reasons, ...reasonItems(reply));
      if (reply.action === RiskAction.ALLOW && (reply.order === undefined || reply.order.orderId === "")) {
        await this.followUp(reply);
      }
    } catch (error) {
      this.say("error", classify(error).message);
    }
  }

  /** "Sent, the venue's answer is pending" (a busy venue), then the order once the venue has it. */
  private async followUp(reply: SubmitIntentResponse): Promise<void> {
    const order = await this.follow(reply.clientOrderId);
    // Shown only while the message is still this order's (not a later answer's).
    if (order === null || this.message.dataset.clientOrderId !== reply.clientOrderId) return;
    const verdict = verdictText({ ...reply, order });
    this.message.dataset.tone = verdict.tone;
    this.message.textContent = verdict.text;
    this.message.dataset.orderId = order.orderId;
  }

  private showTrace(traceId: string): void {
    this.trace.href = logsHash({ trace: traceId });
    this.trace.dataset.trace = traceId;  // not data-trace-id: that opens the ledger's trace view
    this.trace.title = `trace ${traceId}`;
    this.trace.hidden = false;
  }

  private say(tone: string, text: string): void {
    // Each answer replaces the last one's data whole.
    for (const key of ["orderId", "clientOrderId", "action", "intentId"]) delete this.message.dataset[key];
    fill(this.reasons);
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
