// Recent public trades of the selected symbol, newest first.
import { Side } from "../gen/trademesh/common/v1/common_pb";
import type { Trade } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { clockTime } from "../lib/format";
import { fill, h, panel, throttled } from "./dom";

const KEEP = 40;

interface Print {
  tsNs: bigint;
  trade: Trade;
}

export class Tape {
  readonly root: HTMLElement;
  readonly status: HTMLElement;
  private readonly list = h("ol", { class: "tape", id: "trades" });
  private prints: Print[] = [];
  private readonly redraw = throttled(() => this.draw());

  constructor() {
    ({ root: this.root, status: this.status } = panel("Recent trades", "tape", this.list));
  }

  clear(): void {
    this.prints = [];
    this.redraw();
  }

  add(tsNs: bigint, trade: Trade): void {
    this.prints.unshift({ tsNs, trade });
    if (this.prints.length > KEEP) this.prints.length = KEEP;
    this.redraw();
  }

  private draw(): void {
    fill(
      this.list,
      ...this.prints.map(({ tsNs, trade }) =>
        h(
          "li",
          { class: trade.takerSide === Side.SELL ? "sell" : "buy", "data-trade-id": trade.tradeId },
          h("span", { class: "time" }, clockTime(tsNs)),
          h("span", { class: "price" }, trade.price),
          h("span", { class: "size" }, trade.size),
        ),
      ),
    );
  }
}
