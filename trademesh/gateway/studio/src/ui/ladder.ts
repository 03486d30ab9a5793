// The order book ladder: best asks above the spread, best bids below, each level with a depth
// bar. Clicking a level offers its price to the order ticket.
import { forDrawing } from "../lib/decimal";
import type { Level, OrderBook } from "../market/book";
import { fill, h, panel, throttled } from "./dom";

const DEPTH = 12;

export class Ladder {
  readonly root: HTMLElement;
  readonly status: HTMLElement;
  private readonly rows = h("div", { class: "ladder", id: "ladder" });
  private book: OrderBook | null = null;
  readonly redraw = throttled(() => this.draw());

  constructor(private readonly onPrice: (price: string) => void) {
    ({ root: this.root, status: this.status } = panel("Order book", "book", this.rows));
  }

  show(book: OrderBook | null): void {
    this.book = book;
    this.redraw();
  }

  private row(level: Level, side: "bid" | "ask", widest: number): HTMLElement {
    const width = widest > 0 ? Math.round((forDrawing(level.size) / widest) * 100) : 0;
    const row = h(
      "div",
      { class: `level ${side}`, "data-price": level.price, title: "use this price in the order ticket" },
      h("span", { class: "depth", style: `width:${width}%` }),
      h("span", { class: "price" }, level.price),
      h("span", { class: "size" }, level.size),
    );
    row.addEventListener("click", () => this.onPrice(level.price));
    return row;
  }

  private draw(): void {
    if (this.book === null || !this.book.ready) {
      fill(this.rows, h("p", { class: "empty" }, "waiting for a book snapshot"));
      return;
    }
    const { bids, asks } = this.book.top(DEPTH);
    const widest = Math.max(0, ...[...bids, ...asks].map((l) => forDrawing(l.size)));
    fill(
      this.rows,
      ...asks.slice().reverse().map((l) => this.row(l, "ask", widest)),
      h("div", { class: "spread" }, `seq ${this.book.sequence}`),
      ...bids.map((l) => this.row(l, "bid", widest)),
    );
  }
}
