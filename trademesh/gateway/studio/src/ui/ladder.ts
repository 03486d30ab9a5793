// The order book ladder: best asks above the spread, best bids below, each level with a depth
// bar. Clicking a level offers its price to the order ticket.
import { forDrawing } from "../lib/decimal";
import type { Level, OrderBook } from "../market/book";
import { fill, h, panel, throttled } from "./dom";

const DEPTH = 12;
// Drawn at most 10 times a second (it changes at nearly every frame on a busy market).
const DRAW_EVERY_MS = 100;

export class Ladder {
  readonly root: HTMLElement;
  readonly status: HTMLElement;
  private readonly rows = h("div", { class: "ladder", id: "ladder" });
  private book: OrderBook | null = null;
  // The levels last drawn (price, size and depth of each row): a book whose shown levels did not
  // change only has its sequence written, its rows kept.
  private drawn = "";
  private readonly spread = h("div", { class: "spread" });
  /** Draws the book (at most once a frame); not while the page is hidden (it is asked for again
   * when the trading page is shown). */
  readonly redraw = throttled(() => this.draw(), DRAW_EVERY_MS);

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
    if (this.root.closest("[hidden]") !== null) return;
    if (this.book === null || !this.book.ready) {
      this.drawn = "";
      fill(this.rows, h("p", { class: "empty" }, "waiting for a book snapshot"));
      return;
    }
    const { bids, asks } = this.book.top(DEPTH);
    const widest = Math.max(0, ...[...bids, ...asks].map((l) => forDrawing(l.size)));
    const sequence = `seq ${this.book.sequence}`;
    const drawn = `${widest}|${asks.map((l) => `${l.price}:${l.size}`).join()}|${bids.map((l) => `${l.price}:${l.size}`).join()}`;
    if (drawn === this.drawn) {
      if (this.spread.textContent !== sequence) this.spread.textContent = sequence;
      return;
    }
    this.drawn = drawn;
    this.spread.textContent = sequence;
    fill(
      this.rows,
      ...asks.slice().reverse().map((l) => this.row(l, "ask", widest)),
      this.spread,
      ...bids.map((l) => this.row(l, "bid", widest)),
    );
  }
}
