// What a market board row shows in its cells, as text (lib/money): bid, ask and last at the
// instrument's tick (their exact text while its tick is not known), the change since the board
// opened at the tick too, signed, with its percentage, and the 24h volume rounded in its asset
// (the quote asset to the cent, a coin to at most 8 decimals) with the asset named. Each cell
// keeps the exact value it shows, for the title and data-exact. Pure: a row in, texts out.
import { amountText, priceText } from "../lib/money";
import { Board, type BoardRow, volume24h } from "./model";

/** The cells with a figure, in their order after the symbol. */
export const FIGURES = ["bid", "ask", "last", "change", "volume"] as const;
export type Figure = (typeof FIGURES)[number];

export interface Cell {
  /** What is read ("–" for none). */
  shown: string;
  /** The exact value behind it, as the wire spelled it ("" for none). */
  exact: string;
  /** Its kind, the class of its element: "price", "change" or "amount". */
  kind: string;
}

/** "+12.50 (+0.02%)": the change at the tick (exact without one), and its percentage. */
export function changeText(row: BoardRow, tick: string | undefined): string {
  if (row.change === "") return "–";
  const sign = Board.trend(row) > 0 ? "+" : "";
  const percent = row.changePercent === null ? "" : ` (${sign}${row.changePercent.toFixed(2)}%)`;
  return `${sign}${priceText(row.change, tick)}${percent}`;
}

/** "1,234,567.89 USDT": the 24h volume rounded in its asset, the asset after it. */
export function volumeText(row: BoardRow): string {
  const { value, asset } = volume24h(row);
  if (value === "") return "–";
  const shown = amountText(value, asset);
  return asset === "" ? shown : `${shown} ${asset}`;
}

/** Every figure of a row, `tick` its instrument's tick size (undefined: not known yet). */
export function rowCells(row: BoardRow, tick: string | undefined): Record<Figure, Cell> {
  const price = (text: string): Cell => ({ shown: priceText(text, tick), exact: text, kind: "price" });
  return {
    bid: price(row.bid),
    ask: price(row.ask),
    last: price(row.last),
    change: { shown: changeText(row, tick), exact: row.change, kind: "change" },
    volume: { shown: volumeText(row), exact: volume24h(row).value, kind: "amount" },
  };
}
