// The order ticket for the sim venue: limit or market, size and price as the user typed them
// (decimal strings, checked but never converted), then Buy or Sell.
import { classify } from "../api/errors";
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { type Order, OrderStatus, OrderType, TimeInForce } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { isPositiveDecimal } from "../lib/decimal";
import { label } from "../lib/format";
import { h } from "./dom";

export interface OrderDraft {
  symbol: string;
  side: Side;
  type: OrderType;
  size: string;
  price: string;
  timeInForce: TimeInForce;
  clientOrderId: string;
}

/** A client order id: the venue places an order at most once per id, even if the call is retried. */
function newClientOrderId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `studio-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
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
  private readonly tif = h(
    "select",
    { id: "ticket-tif" },
    option("gtc", "GTC"),
    option("ioc", "IOC"),
    option("fok", "FOK"),
  );
  private readonly message = h("p", { id: "ticket-message", class: "message", role: "status" });
  private readonly title = h("h3", {}, "New order");

  constructor(private readonly place: (draft: OrderDraft) => Promise<Order>) {
    const buy = h("button", { id: "ticket-buy", type: "button", class: "buy" }, "Buy");
    const sell = h("button", { id: "ticket-sell", type: "button", class: "sell" }, "Sell");
    buy.addEventListener("click", () => void this.submit(Side.BUY));
    sell.addEventListener("click", () => void this.submit(Side.SELL));
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
      h("div", { class: "sides" }, buy, sell),
      this.message,
    );
    this.root.addEventListener("submit", (event) => event.preventDefault());
  }

  setSymbol(symbol: string): void {
    this.symbol = symbol;
    this.title.textContent = `New order · ${symbol}`;
  }

  /** A price picked elsewhere (the book ladder). */
  setPrice(price: string): void {
    this.price.value = price;
  }

  private draft(side: Side): OrderDraft | string {
    const market = this.type.value === "market";
    const size = this.size.value.trim();
    const price = market ? "" : this.price.value.trim();
    if (this.symbol === "") return "pick a symbol first";
    if (!isPositiveDecimal(size)) return `size ${JSON.stringify(size)} is not a positive decimal`;
    if (!market && !isPositiveDecimal(price)) return `price ${JSON.stringify(price)} is not a positive decimal`;
    const tif = { gtc: TimeInForce.GTC, ioc: TimeInForce.IOC, fok: TimeInForce.FOK }[this.tif.value];
    return {
      symbol: this.symbol,
      side,
      type: market ? OrderType.MARKET : OrderType.LIMIT,
      size,
      price,
      // GTC is meaningless for a market order; the venue's default (IOC) applies.
      timeInForce: market ? TimeInForce.UNSPECIFIED : (tif ?? TimeInForce.UNSPECIFIED),
      clientOrderId: newClientOrderId(),
    };
  }

  private async submit(side: Side): Promise<void> {
    const draft = this.draft(side);
    if (typeof draft === "string") {
      this.say("error", draft);
      return;
    }
    this.say("", "placing…");
    try {
      const order = await this.place(draft);
      this.message.dataset.orderId = order.orderId;
      const at = order.price === "" ? "market" : `@ ${order.price}`;
      const reason = order.statusReason === "" ? "" : ` (${order.statusReason})`;
      this.say(
        order.status === OrderStatus.REJECTED ? "error" : "ok",
        `${label(Side, order.side)} ${order.size} ${order.symbol} ${at}: ${label(OrderStatus, order.status)}${reason}`,
      );
    } catch (error) {
      this.say("error", classify(error).message);
    }
  }

  private say(tone: string, text: string): void {
    if (tone !== "ok") delete this.message.dataset.orderId;
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
