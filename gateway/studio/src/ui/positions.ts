// Positions on the sim venue (GetPositions), refreshed after fills and on a timer.
import type { Position } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { amount, price, size } from "../lib/money";
import { fill, h, table } from "./dom";

export class Positions {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "positions" });

  /** `tick` gives a symbol's tick size at the venue traded (undefined: not known yet). */
  constructor(private readonly tick: (symbol: string) => string | undefined) {
    const columns = ["symbol", "size", "entry price", "realized PnL"];
    this.root = h("div", { class: "positions" }, h("h3", {}, "Positions"), table(columns, this.body));
    this.show([]);
  }

  show(positions: readonly Position[]): void {
    if (positions.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: 4 }, "flat")));
      return;
    }
    fill(
      this.body,
      ...positions.map((p) =>
        h(
          "tr",
          { "data-symbol": p.symbol, "data-size": p.size },
          h("td", {}, p.symbol),
          h("td", { class: `num ${p.size.startsWith("-") ? "sell" : "buy"}`, "data-col": "size" }, size(p.size)),
          h("td", { class: "num", "data-col": "entry" }, price(p.entryPrice, this.tick(p.symbol))),
          h("td", { class: "num", "data-col": "realized" }, amount(p.realizedPnl)),
        ),
      ),
    );
  }
}
