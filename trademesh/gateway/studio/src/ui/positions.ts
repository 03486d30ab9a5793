// Positions on the sim venue (GetPositions), refreshed after fills and on a timer; a
// derivatives position with its leverage, margin ratio, liquidation price and the distance to it
// (ui/margin), a spot one with those cells empty.
import type { Position } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { fromPosition } from "../lib/margin";
import { amount, price, size } from "../lib/money";
import { fill, h, table } from "./dom";
import { MARGIN_COLUMNS, marginCells } from "./margin";

const COLUMNS = ["symbol", "size", "entry price", "realized PnL", ...MARGIN_COLUMNS];

export class Positions {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "positions" });

  /** `tick` gives a symbol's tick size at the venue traded (undefined: not known yet). */
  constructor(private readonly tick: (symbol: string) => string | undefined) {
    this.root = h("div", { class: "positions" }, h("h3", {}, "Positions"), table(COLUMNS, this.body));
    this.show([]);
  }

  show(positions: readonly Position[]): void {
    if (positions.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "flat")));
      return;
    }
    fill(
      this.body,
      ...positions.map((p) =>
        h(
          "tr",
          { "data-symbol": p.symbol, "data-size": p.size, "data-mark": p.markPrice },
          h("td", {}, p.symbol),
          h("td", { class: `num ${p.size.startsWith("-") ? "sell" : "buy"}`, "data-col": "size" }, size(p.size)),
          h("td", { class: "num", "data-col": "entry" }, price(p.entryPrice, this.tick(p.symbol))),
          h("td", { class: "num", "data-col": "realized" }, amount(p.realizedPnl)),
          ...marginCells(fromPosition(p), this.tick(p.symbol)),
        ),
      ),
    );
  }
}
