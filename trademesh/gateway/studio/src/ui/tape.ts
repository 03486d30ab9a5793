// Recent public trades of the selected symbol, newest first, and a derivative's liquidations among
// them (the venue's liquidation orders in its market, anyone's: KIND_LIQUIDATIONS), each marked.
import { Side } from "../gen/trademesh/common/v1/common_pb";
import type { Liquidation, Trade } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { clockTime } from "../lib/format";
import { fill, h, panel, throttled } from "./dom";

const KEEP = 40;
// Drawn at most 10 times a second (it changes at nearly every frame on a busy market).
const DRAW_EVERY_MS = 100;

type Print = { tsNs: bigint; trade: Trade; liquidation?: never } | { tsNs: bigint; liquidation: Liquidation };

export class Tape {
  readonly root: HTMLElement;
  readonly status: HTMLElement;
  private readonly list = h("ol", { class: "tape", id: "trades" });
  private prints: Print[] = [];
  // The prints not drawn yet (the newest ones), or all of them (a clear): a busy market's rows are
  // each made once and put on top, not all KEEP made again at every frame.
  private unseen = 0;
  private remake = true;
  /** Draws what came since the last drawing (at most once a frame); not while the page is hidden
   * (it is asked for again when the trading page is shown). */
  readonly redraw = throttled(() => this.draw(), DRAW_EVERY_MS);

  constructor() {
    ({ root: this.root, status: this.status } = panel("Recent trades", "tape", this.list));
  }

  clear(): void {
    this.prints = [];
    this.remake = true;
    this.redraw();
  }

  add(tsNs: bigint, trade: Trade): void {
    this.put({ tsNs, trade });
  }

  addLiquidation(tsNs: bigint, liquidation: Liquidation): void {
    this.put({ tsNs, liquidation });
  }

  private put(print: Print): void {
    this.prints.unshift(print);
    if (this.prints.length > KEEP) this.prints.length = KEEP;
    this.unseen = Math.min(KEEP, this.unseen + 1);
    this.redraw();
  }

  private draw(): void {
    if (this.root.closest("[hidden]") !== null) return;
    if (this.remake || this.unseen >= this.prints.length) fill(this.list, ...this.prints.map(row));
    else if (this.unseen > 0) {
      this.list.prepend(...this.prints.slice(0, this.unseen).map(row));
      while (this.list.childElementCount > this.prints.length) this.list.lastElementChild?.remove();
    }
    this.remake = false;
    this.unseen = 0;
  }
}

function row(print: Print): HTMLElement {
  return print.liquidation === undefined ? traded(print) : liquidated(print);
}

function traded({ tsNs, trade }: { tsNs: bigint; trade: Trade }): HTMLElement {
  return h(
    "li",
    { class: trade.takerSide === Side.SELL ? "sell" : "buy", "data-trade-id": trade.tradeId },
    h("span", { class: "time" }, clockTime(tsNs)),
    h("span", { class: "price" }, trade.price),
    h("span", { class: "size" }, trade.size),
  );
}

/** A liquidation: its order's side (SELL closes a long, BUY a short), badged. */
function liquidated({ tsNs, liquidation }: { tsNs: bigint; liquidation: Liquidation }): HTMLElement {
  const side = liquidation.side === Side.SELL ? "sell" : "buy";
  const closes = side === "sell" ? "a long" : "a short";
  const time = clockTime(tsNs);
  return h(
    "li",
    { class: `${side} liquidation`, "data-liquidation": "true", title: `liquidation at ${time}: a ${side} closing ${closes}` },
    // The badge takes the milliseconds' room: the time to the second (whole in the title).
    h("span", { class: "time" }, h("span", { class: "badge liquidation" }, "liq"), " ", time.replace(/\.\d+$/, "")),
    h("span", { class: "price" }, liquidation.price),
    h("span", { class: "size" }, liquidation.size),
  );
}
