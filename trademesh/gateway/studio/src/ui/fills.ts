// Fills of the sim venue as the execution stream reports them (this page's session), newest first;
// each opens its trace (signal to ledger transfer, ledger/trace). A fill by which the venue
// liquidated a position (Fill.liquidation, or its order's Order.liquidation) carries the
// "liquidation" badge (ui/margin) and data-liquidation="true".
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { type Fill, Liquidity } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { traceButton } from "../ledger/trace";
import { clockTime, label } from "../lib/format";
import { amount, price, size } from "../lib/money";
import { fill, h, table, throttled } from "./dom";
import { liquidationBadge } from "./margin";

const KEEP = 100;

export class Fills {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "fills" });
  private fills: Fill[] = [];
  private readonly seen = new Set<string>();
  // Fills whose order the stream said was a liquidation (Order.liquidation), by fill id.
  private readonly liquidations = new Set<string>();
  private readonly rows = new Map<string, HTMLElement>(); // fill id -> its row
  private readonly redraw = throttled(() => this.draw());

  /** `tick` gives a symbol's tick size at the venue traded (undefined: not known yet). */
  constructor(private readonly tick: (symbol: string) => string | undefined) {
    const columns = ["time", "symbol", "side", "price", "size", "fee", "liquidity", ""];
    this.root = h("div", { class: "fills" }, h("h3", {}, "Fills"), table(columns, this.body));
    this.draw();
  }

  /** A fill from the execution stream; `liquidation` when its order is the venue's liquidation. */
  add(fillEvent: Fill, liquidation = false): void {
    // A resubscribed stream may repeat a fill; its id makes it one row.
    if (this.seen.has(fillEvent.fillId)) return;
    this.seen.add(fillEvent.fillId);
    if (liquidation || fillEvent.liquidation) this.liquidations.add(fillEvent.fillId);
    this.fills.unshift(fillEvent);
    if (this.fills.length > KEEP) this.fills.length = KEEP;
    this.redraw();
  }

  /** Every row made again (the instruments' ticks arrived). */
  retick(): void {
    this.rows.clear();
    this.redraw();
  }

  private draw(): void {
    if (this.fills.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: 8 }, "no fills yet")));
      return;
    }
    // A fill's row is made once (a fill never changes): a new fill moves the rows, never replaces
    // them, so a click on a row's button is not lost to a redraw between press and release.
    const kept = new Set(this.fills.map((f) => f.fillId));
    for (const id of [...this.rows.keys()]) if (!kept.has(id)) this.rows.delete(id);
    for (const id of [...this.liquidations]) if (!kept.has(id)) this.liquidations.delete(id);
    fill(this.body, ...this.fills.map((f) => this.rowOf(f)));
  }

  private rowOf(f: Fill): HTMLElement {
    let row = this.rows.get(f.fillId);
    if (row === undefined) {
      const liquidation = this.liquidations.has(f.fillId);
      row = h(
        "tr",
        {
          "data-fill-id": f.fillId,
          "data-order-id": f.orderId,
          "data-liquidation": String(liquidation),
          class: liquidation ? "liquidation" : undefined,
        },
        h("td", {}, clockTime(f.tsEventNs)),
        h("td", {}, f.symbol),
        h("td", { class: f.side === Side.SELL ? "sell" : "buy" }, label(Side, f.side)),
        h("td", { class: "num", "data-col": "price" }, price(f.price, this.tick(f.symbol))),
        h("td", { class: "num", "data-col": "size" }, size(f.size)),
        h("td", { class: "num", "data-col": "fee" }, amount(f.fee, f.feeAsset, true)),
        h("td", {}, label(Liquidity, f.liquidity), liquidation ? " " : null, liquidation ? liquidationBadge(f.clientOrderId) : null),
        h("td", {}, traceButton(f.fillId, "this fill")),
      );
      this.rows.set(f.fillId, row);
    }
    return row;
  }
}
