// The market board's state: every venue's tickers, the newest per (venue, symbol) kept as they
// come and drawn at most once a frame (conflated: a symbol whose ticker changed three times in a
// frame is drawn once, with the newest), each with its change since the board opened (the first
// last price the board saw of it) and the venue's 24h volume. Money stays decimal text: the change
// is exact (decimals), its percentage a number for display only. Pure: tickers in, rows out.
import type { Ticker } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { compareDecimal, isDecimal, subtractDecimal } from "../lib/decimal";

export interface BoardRow {
  venue: string;
  symbol: string;
  bid: string;
  ask: string;
  last: string;
  /** The ticker's event time (ns since the Unix epoch), as the venue stamped it. */
  tsEventNs: bigint;
  /** The first last price seen since the board opened ("" until one is). */
  opening: string;
  /** last - opening, exact ("" without both). */
  change: string;
  /** The change in percent of the opening price, for display (null without one). */
  changePercent: number | null;
  /** Traded over the venue's last 24 h in base and in quote units ("" when it does not say). */
  baseVolume: string;
  quoteVolume: string;
}

/** A canonical (ccxt unified) symbol's assets: "BTC/USDT" and "BTC/USDT:USDT" are BTC in USDT,
 * "BTC/USD:BTC-250328" BTC in USD; "" for a part the symbol does not name. */
export function symbolAssets(symbol: string): { base: string; quote: string } {
  const slash = symbol.indexOf("/");
  if (slash < 0) return { base: "", quote: "" };
  return { base: symbol.slice(0, slash), quote: symbol.slice(slash + 1).split(":")[0] ?? "" };
}

/** A row's 24h volume as the board shows it: in the quote asset when the venue states it (one
 * measure across symbols), else in the base asset (a venue that counts only that); an empty
 * value when the venue states neither. */
export function volume24h(row: BoardRow): { value: string; asset: string } {
  const { base, quote } = symbolAssets(row.symbol);
  if (row.quoteVolume !== "") return { value: row.quoteVolume, asset: quote };
  if (row.baseVolume !== "") return { value: row.baseVolume, asset: base };
  return { value: "", asset: "" };
}

function key(venue: string, symbol: string): string {
  return `${venue}\u0000${symbol}`;
}

export class Board {
  private readonly rows = new Map<string, BoardRow>();
  private readonly changed = new Set<string>();
  private readonly venueNames = new Set<string>();

  /** A ticker from the bridge: the newest of its symbol, drawn at the next frame. */
  ticker(venue: string, symbol: string, tsEventNs: bigint, ticker: Ticker): void {
    const id = key(venue, symbol);
    const previous = this.rows.get(id);
    if (previous !== undefined && previous.tsEventNs > tsEventNs) return; // the bus's redelivery of an older one
    const opening = previous?.opening || (isDecimal(ticker.lastPrice) ? ticker.lastPrice : "");
    const last = ticker.lastPrice;
    const change = opening !== "" && isDecimal(last) ? subtractDecimal(last, opening) : "";
    const base = Number(opening);
    const changePercent = change === "" || !(base > 0) ? null : (Number(change) / base) * 100;
    this.rows.set(id, {
      venue,
      symbol,
      bid: ticker.bestBid,
      ask: ticker.bestAsk,
      last,
      tsEventNs,
      opening,
      change,
      changePercent,
      baseVolume: ticker.baseVolume24h,
      quoteVolume: ticker.quoteVolume24h,
    });
    this.venueNames.add(venue);
    this.changed.add(id);
  }

  /** Every row drawn again at the next frame (how a row reads changed: its tick came). */
  touchAll(): void {
    for (const id of this.rows.keys()) this.changed.add(id);
  }

  /** A venue the registry lists: it has a column, with no tickers yet maybe. */
  venue(name: string): void {
    this.venueNames.add(name);
  }

  /** The rows changed since the last call (each once, its newest), and forgets them. */
  takeChanged(): BoardRow[] {
    const rows = [...this.changed].flatMap((id) => this.rows.get(id) ?? []);
    this.changed.clear();
    return rows;
  }

  /** Every venue with a column, by name. */
  venues(): string[] {
    return [...this.venueNames].sort();
  }

  /** A row's trend: 1 up since the board opened, -1 down, 0 unchanged or unknown. */
  static trend(row: BoardRow): number {
    return row.change === "" ? 0 : compareDecimal(row.change, "0");
  }
}
