// Positions as the inspector sees them (ListPositions): runtime (opened by the inspector) and
// legacy (found at its start, never touched), each with its protective orders (stop-loss and
// take-profit: price, size, native or emulated). A row selects its position for the chart.
// Prices at the market's tick, PnL rounded (lib/money), each exact value on hover. A derivatives
// position shows its leverage, margin ratio, liquidation price and the distance to it, coloured
// (ui/margin: the inspector's PositionView 13-17); a spot one leaves those cells empty.
import type { PositionView, ProtectiveOrder } from "../gen/trademesh/risk/v1/inspector_pb";
import { fromView } from "../lib/margin";
import { amount, price, size } from "../lib/money";
import { fill, h, table } from "./dom";
import { MARGIN_COLUMNS, marginCells } from "./margin";

/** A market's tick size (undefined: not known yet). */
export type TickOf = (venue: string, symbol: string) => string | undefined;

const COLUMNS = [
  "kind", "venue", "symbol", "size", "avg price", "mark", "uPnL", "rPnL", ...MARGIN_COLUMNS, "stop-loss", "take-profit",
]; // prettier-ignore

function positionKey(position: PositionView): string {
  return `${position.venue}|${position.symbol}|${position.legacy ? "legacy" : "runtime"}`;
}

function protectiveCell(position: PositionView, role: string, tick: string | undefined): HTMLElement {
  const orders = position.protective.filter((o) => o.role === role);
  const level = role === "stop_loss" ? position.stopLoss : position.takeProfit;
  if (orders.length === 0) return h("td", { class: "num", "data-role": role }, level ? price(level, tick) : "–");
  return h(
    "td",
    { class: "num", "data-role": role },
    ...orders.map((order: ProtectiveOrder) =>
      h(
        "span",
        {
          class: "protective",
          "data-client-order-id": order.clientOrderId,
          "data-price": order.price,
          "data-size": order.size,
          "data-emulated": String(order.emulated),
          title: `${order.clientOrderId}${order.emulated ? " (emulated by the inspector)" : ""}`,
        },
        price(order.price, tick),
        " × ",
        size(order.size),
        order.emulated ? " (emulated)" : "",
      ),
    ),
  );
}

export class RiskPositions {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "risk-positions" });
  private positions: PositionView[] = [];
  private selectedKey: string | null = null;

  /** `onSelect` gets the selected position after every change (null when none is left). */
  constructor(
    private readonly onSelect: (position: PositionView | null) => void,
    private readonly tick: TickOf,
  ) {
    this.root = h("div", { class: "risk-positions" }, table(COLUMNS, this.body));
    this.show([]);
  }

  show(positions: readonly PositionView[]): void {
    this.positions = [...positions].sort((a, b) => Number(a.legacy) - Number(b.legacy));
    // The first runtime position is selected until the user picks one.
    const keep = this.positions.find((p) => positionKey(p) === this.selectedKey) ?? this.positions[0] ?? null;
    this.selectedKey = keep === null ? null : positionKey(keep);
    this.draw();
    this.onSelect(keep);
  }

  private select(position: PositionView): void {
    this.selectedKey = positionKey(position);
    this.draw();
    this.onSelect(position);
  }

  private row(position: PositionView): HTMLElement {
    const tick = this.tick(position.venue, position.symbol);
    const priced = (text: string): HTMLElement | string => (text === "" ? "–" : price(text, tick));
    const money = (text: string): HTMLElement | string => (text === "" ? "–" : amount(text));
    const row = h(
      "tr",
      {
        "data-venue": position.venue,
        "data-symbol": position.symbol,
        "data-size": position.size,
        "data-legacy": String(position.legacy),
        "aria-selected": String(positionKey(position) === this.selectedKey),
        class: "selectable",
      },
      h("td", {}, position.legacy ? "legacy" : "runtime"),
      h("td", {}, position.venue),
      h("td", {}, position.symbol),
      h("td", { class: `num ${position.size.startsWith("-") ? "sell" : "buy"}` }, size(position.size)),
      h("td", { class: "num", "data-col": "average" }, priced(position.averagePrice)),
      h("td", { class: "num", "data-col": "mark" }, priced(position.mark)),
      h("td", { class: "num", "data-col": "unrealized" }, money(position.unrealizedPnl)),
      h("td", { class: "num", "data-col": "realized" }, money(position.realizedPnl)),
      ...marginCells(fromView(position), tick),
      protectiveCell(position, "stop_loss", tick),
      protectiveCell(position, "take_profit", tick),
    );
    row.addEventListener("click", () => this.select(position));
    return row;
  }

  private draw(): void {
    if (this.positions.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "flat")));
    } else fill(this.body, ...this.positions.map((p) => this.row(p)));
  }
}
