// The derivatives strip of the market view (docs/studio.md, "Studio: derivatives"): for a
// perpetual (or another derivative) the venue's mark price, index price, funding rate with its
// next funding time, and open interest, live (market/derivatives). Hidden for spot. Mark and
// funding rate show "–" until the venue states them; index, next funding time and open interest
// only once it does (a venue, like the sim, may state no index or open interest). Each figure's
// exact text is in its data-exact (lib/money).
import { type DerivativeFigures, fundingRateText, untilText } from "../market/derivatives";
import { amountText, exact, price, size } from "../lib/money";
import { fill, h, throttled } from "./dom";

export class DerivativesStrip {
  readonly root = h("div", { class: "derivatives", id: "derivatives", hidden: true });
  private figures: DerivativeFigures | null = null;
  private tick: string | undefined;
  private quote = "";
  private readonly redraw = throttled(() => this.draw());

  /** A new selection: shown (empty) for a derivative, hidden otherwise. */
  reset(derivative: boolean, tick: string | undefined, quote: string): void {
    this.root.hidden = !derivative;
    this.root.dataset.live = "false";
    this.tick = tick;
    this.quote = quote;
    this.figures = null;
    fill(this.root);
    if (derivative) this.redraw();
  }

  show(figures: DerivativeFigures): void {
    this.figures = figures;
    this.root.dataset.live = "true";
    this.redraw();
  }

  private draw(): void {
    if (this.root.hidden) return;
    const f = this.figures;
    const figure = (name: string, label: string, ...value: (Node | string)[]): HTMLElement =>
      h("span", { class: "figure", "data-figure": name }, h("span", { class: "label" }, label), " ", ...value);
    const shown: HTMLElement[] = [figure("mark", "Mark", price(f?.mark ?? "", this.tick))];
    if (f !== null && f.index !== "") shown.push(figure("index", "Index", price(f.index, this.tick)));
    const rate = f?.fundingRate ?? "";
    shown.push(figure("funding-rate", "Funding", exact(rate, rate === "" ? "–" : fundingRateText(rate), "", "rate")));
    if (f !== null && f.nextFundingNs > 0n) shown.push(this.nextFunding(f.nextFundingNs));
    if (f !== null && f.openInterest !== "") shown.push(this.openInterest(f));
    fill(this.root, ...shown);
  }

  private nextFunding(atNs: bigint): HTMLElement {
    const at = new Date(Number(atNs / 1_000_000n));
    const time = at.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });
    return h(
      "span",
      { class: "figure", "data-figure": "next-funding", "data-next-funding-ns": String(atNs), title: at.toISOString() },
      h("span", { class: "label" }, "next"),
      ` ${time} (${untilText(atNs, Date.now())})`,
    );
  }

  private openInterest(f: DerivativeFigures): HTMLElement {
    const value = f.openInterestValue === "" ? "" : ` (${amountText(f.openInterestValue, this.quote)} ${this.quote})`;
    return h(
      "span",
      { class: "figure", "data-figure": "open-interest" },
      h("span", { class: "label" }, "Open interest"),
      " ",
      size(f.openInterest),
      value,
    );
  }
}
