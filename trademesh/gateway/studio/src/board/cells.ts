// What a market board row shows in its cells, as text (lib/money): bid, ask and last at the
// instrument's tick (their exact text while its tick is not known), the change since the board
// opened and the change over 24 h at the tick too, signed, with their percentages, and the 24h
// volume rounded in its asset
// (the quote asset to the cent, a coin to at most 8 decimals) with the asset named. Each cell
// keeps the exact value it shows, for the title and data-exact. Pure: a row in, texts out.
import { amountText, priceText } from "../lib/money";
import { Board, type BoardRow, volume24h } from "./model";

/** The cells with a figure, in their order after the symbol. */
export const FIGURES = ["bid", "ask", "last", "change", "change24h", "volume"] as const;
export type Figure = (typeof FIGURES)[number];

export interface Cell {
  /** What is read ("–" for none). */
  shown: string;
  /** The exact value behind it, as the wire spelled it ("" for none). */
  exact: string;
  /** Its kind, the class of its element: "price", "change" or "amount". */
  kind: string;
}

/** "+12.50 (+0.02%)": a change at the tick (exact without one), and its percentage. */
function signedText(change: string, percentOf: number | null, trend: number, tick: string | undefined): string {
  if (change === "") return "–";
  const sign = trend > 0 ? "+" : "";
  const percent = percentOf === null ? "" : ` (${sign}${percentOf.toFixed(2)}%)`;
  return `${sign}${priceText(change, tick)}${percent}`;
}

/** The change since the board opened, as changeText shows it. */
export function changeText(row: BoardRow, tick: string | undefined): string {
  return signedText(row.change, row.changePercent, Board.trend(row), tick);
}

/** The change over 24 h (against the venue's price 24 h ago), as changeText shows it. */
export function change24hText(row: BoardRow, tick: string | undefined): string {
  return signedText(row.change24h, row.change24hPercent, Board.trend24h(row), tick);
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
    change24h: { shown: change24hText(row, tick), exact: row.change24h, kind: "change" },
    volume: { shown: volumeText(row), exact: volume24h(row).value, kind: "amount" },
  };
}
