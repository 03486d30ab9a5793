// Money and prices as people read them (docs/studio.md, "Studio: money and prices"). The wire's
// decimal string is the value: it is rounded for display as text (never through a float), and
// kept whole in the element's title (shown on hover) and in data-exact, which tools and tests
// read. A price is shown at its instrument's tick (the decimals of its tick size); a price whose
// instrument is not known keeps its exact text. An amount of a fiat currency or a USD
// stablecoin (the quote assets) to the cent, of any other asset (a coin) to at most 8 decimals,
// trailing zeros trimmed; a non-zero amount is never shown as zero (a fee of 0.0012 USDT reads
// "0.0012"). Thousands are grouped with commas.
import { h } from "../ui/dom";

/** Fiat currencies and USD stablecoins: amounts to the cent. */
const CENT_ASSETS = new Set([
  "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "TRY", "BRL",
  "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "PYUSD", "USDE", "USDD",
]); // prettier-ignore
/** The places of an amount in a quote asset, and at most those of any other asset. */
export const QUOTE_PLACES = 2;
export const COIN_PLACES = 8;
/** The asset of a figure given in the quote asset without naming it (the inspector's equity). */
export const QUOTE = "";
// A non-zero amount that rounds to zero is shown with this many significant digits.
const SIGNIFICANT = 2;

const DECIMAL = /^-?\d+(\.\d+)?$/;

interface Parts {
  negative: boolean;
  whole: string;
  fraction: string;
}

function parse(text: string): Parts | null {
  if (!DECIMAL.test(text)) return null;
  const negative = text.startsWith("-");
  const [whole = "0", fraction = ""] = (negative ? text.slice(1) : text).split(".");
  return { negative, whole: whole.replace(/^0+(?=\d)/, ""), fraction };
}

/** "0999" + 1 -> "1000": a string of digits plus one, carried. */
function increment(digits: string): string {
  const out = digits.split("");
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== "9") {
      out[i] = String(Number(out[i]) + 1);
      return out.join("");
    }
    out[i] = "0";
  }
  return `1${out.join("")}`;
}

/** `text` rounded to `places` decimals, half away from zero, with exactly that many decimals;
 * the text itself when it is not a plain decimal. "-0.004" at 2 is "0.00" (no negative zero). */
export function roundDecimal(text: string, places: number): string {
  const parts = parse(text);
  if (parts === null) return text;
  const kept = parts.whole + parts.fraction.padEnd(places, "0").slice(0, places);
  const up = (parts.fraction[places] ?? "0") >= "5";
  const digits = up ? increment(kept) : kept;
  const whole = digits.slice(0, digits.length - places) || "0";
  const fraction = digits.slice(digits.length - places);
  const body = places > 0 ? `${whole}.${fraction}` : whole;
  return parts.negative && /[1-9]/.test(digits) ? `-${body}` : body;
}

/** "1.2300" -> "1.23", "5.000" -> "5". */
export function trimZeros(text: string): string {
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

/** "-1234567.5" -> "-1,234,567.5". */
export function groupThousands(text: string): string {
  const parts = parse(text);
  if (parts === null) return text;
  const whole = parts.whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${parts.negative ? "-" : ""}${whole}${parts.fraction === "" ? "" : `.${parts.fraction}`}`;
}

/** The decimals of a tick size: "0.01" -> 2, "0.5" -> 1, "10" -> 0 (null when not a tick). */
export function tickPlaces(tick: string): number | null {
  const parts = parse(tick);
  if (parts === null || parts.negative || !/[1-9]/.test(parts.whole + parts.fraction)) return null;
  return trimZeros(`${parts.whole}.${parts.fraction}`).split(".")[1]?.length ?? 0;
}

/** Where the first significant digit of a fraction is: "0.00123" -> 3 (null for a whole part). */
function firstSignificant(parts: Parts): number | null {
  if (/[1-9]/.test(parts.whole)) return null;
  const at = parts.fraction.search(/[1-9]/);
  return at < 0 ? null : at + 1;
}

/** The places an amount of `asset` is shown with: 2 for a quote asset (and for QUOTE), at most
 * 8 for a coin; more for a non-zero amount that would read as zero. */
function amountPlaces(parts: Parts, asset: string): { places: number; trim: boolean } {
  const cents = asset === QUOTE || CENT_ASSETS.has(asset.toUpperCase());
  const places = cents ? QUOTE_PLACES : COIN_PLACES;
  const first = firstSignificant(parts);
  if (first !== null && first > places) return { places: Math.min(first + SIGNIFICANT - 1, 18), trim: true };
  return { places, trim: !cents };
}

/** An amount of `asset` as shown: "1,234.50" (USDT), "0.01234568" (BTC); the text itself when
 * it is not a plain decimal; "–" when empty. */
export function amountText(text: string, asset: string = QUOTE): string {
  if (text === "") return "–";
  const parts = parse(text);
  if (parts === null) return text;
  const { places, trim } = amountPlaces(parts, asset);
  const rounded = roundDecimal(text, places);
  return groupThousands(trim ? trimZeros(rounded) : rounded);
}

/** A price as shown: at the decimals of its instrument's `tick` ("65,000.10"), its exact text
 * when the tick is not known; "–" when empty. */
export function priceText(text: string, tick: string | undefined): string {
  if (text === "") return "–";
  const places = tick === undefined ? null : tickPlaces(tick);
  if (places === null || parse(text) === null) return text;
  return groupThousands(roundDecimal(text, places));
}

/** A size (of a coin or of contracts) as shown: at most 8 decimals, trailing zeros trimmed. */
export function sizeText(text: string): string {
  if (text === "") return "–";
  return parse(text) === null ? text : groupThousands(trimZeros(roundDecimal(text, COIN_PLACES)));
}

/** The element of a figure: `shown` as its text, the exact value in its title and data-exact
 * (none when the figure is empty); `suffix` (an asset) after it. */
export function exact(text: string, shown: string, suffix = "", kind = "amount"): HTMLElement {
  const attrs = text === "" ? { class: kind } : { class: kind, title: text, "data-exact": text };
  return h("span", attrs, suffix === "" || text === "" ? shown : `${shown} ${suffix}`);
}

/** An amount of `asset`, rounded, its asset after it when `named`. */
export function amount(text: string, asset: string = QUOTE, named = false): HTMLElement {
  return exact(text, amountText(text, asset), named ? asset : "", "amount");
}

/** A price at its instrument's tick (undefined: not known, shown exactly). */
export function price(text: string, tick: string | undefined): HTMLElement {
  return exact(text, priceText(text, tick), "", "price");
}

/** A size: at most 8 decimals. */
export function size(text: string): HTMLElement {
  return exact(text, sizeText(text), "", "size");
}
