// The market board's state: every venue's tickers, the newest per (venue, symbol) kept as they
// come and drawn at most once a frame (conflated: a symbol whose ticker changed three times in a
// frame is drawn once, with the newest), each with its change since the board opened (the first
// last price the board saw of it), its change over 24 hours (against the open of the venue's first
// 1m candle of the last 24 h: its reference) and the venue's 24h volume. Tickers come two ways:
// the bridge's live stream, and every instrument's at once (MarketData GetTickers, a snapshot
// every few seconds), which fills every row at once and keeps those the stream does not carry
// current; a row the stream fed within STREAM_FRESH_MS keeps the stream's. Money stays decimal
// text: the changes are exact (decimals), their percentages numbers for display only. Pure:
// tickers in, rows out.
import type { SymbolTicker, Ticker } from "../gen/trademesh/marketdata/v1/marketdata_pb";
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
  /** The price 24 h ago: the open of the venue's first 1m candle of the last 24 h ("" until known). */
  reference: string;
  /** That candle's open time (ns; 0n until known): later than 24 h ago when the venue holds less. */
  referenceNs: bigint;
  /** last - reference, exact ("" without both). */
  change24h: string;
  /** The 24h change in percent of the reference, for display (null without one). */
  change24hPercent: number | null;
  /** Where the shown ticker came from: the bridge's stream, or a GetTickers snapshot. */
  source: "stream" | "snapshot";
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

/** A row the stream fed this recently keeps the stream's ticker over a snapshot's. */
export const STREAM_FRESH_MS = 15_000;
/** A symbol's 24h reference is asked again after this long (it moves as the day does). */
export const REFERENCE_MS = 10 * 60_000;

/** The 24h change of `last` against `reference` (its time `referenceNs`), exact. */
export function change24h(
  last: string,
  reference: string,
  referenceNs: bigint,
): Pick<BoardRow, "reference" | "referenceNs" | "change24h" | "change24hPercent"> {
  if (reference === "" || !isDecimal(last)) {
    return { reference, referenceNs, change24h: "", change24hPercent: null };
  }
  const change = subtractDecimal(last, reference);
  const base = Number(reference);
  return { reference, referenceNs, change24h: change, change24hPercent: base > 0 ? (Number(change) / base) * 100 : null };
}

export class Board {
  private readonly rows = new Map<string, BoardRow>();
  /** When the stream last fed each row (ms), by key. */
  private readonly streamedMs = new Map<string, number>();
  private readonly references = new Map<string, { price: string; ns: bigint }>();
  private readonly referenceAskedMs = new Map<string, number>();
  private readonly changed = new Set<string>();
  private readonly venueNames = new Set<string>();

  /** A ticker from the bridge: the newest of its symbol, drawn at the next frame. */
  ticker(venue: string, symbol: string, tsEventNs: bigint, ticker: Ticker, nowMs = Date.now()): void {
    if (this.take(venue, symbol, tsEventNs, ticker, "stream")) this.streamedMs.set(key(venue, symbol), nowMs);
  }

  /** Every instrument's ticker of `venue` at once (GetTickers), as of `receivedNs` where the
   * venue did not time one: each row the stream has not fed within STREAM_FRESH_MS takes it
   * (the newest wins). The number of rows it changed. */
  snapshot(venue: string, tickers: readonly SymbolTicker[], receivedNs: bigint, nowMs = Date.now()): number {
    let taken = 0;
    this.venueNames.add(venue);
    for (const item of tickers) {
      if (item.ticker === undefined) continue;
      const streamed = this.streamedMs.get(key(venue, item.symbol));
      if (streamed !== undefined && nowMs - streamed < STREAM_FRESH_MS) continue;
      const ts = item.tsEventNs > 0n ? item.tsEventNs : receivedNs;
      if (this.take(venue, item.symbol, ts, item.ticker, "snapshot")) taken += 1;
    }
    return taken;
  }

  /** The symbol's price 24 h ago: `open` of the venue's first 1m candle since then, opened at
   * `openTimeNs`; asked again after REFERENCE_MS (referencesDue). */
  reference(venue: string, symbol: string, open: string, openTimeNs: bigint, nowMs = Date.now()): void {
    const id = key(venue, symbol);
    this.referenceAskedMs.set(id, nowMs);
    if (!isDecimal(open)) return;
    this.references.set(id, { price: open, ns: openTimeNs });
    const row = this.rows.get(id);
    if (row === undefined) return;
    this.rows.set(id, { ...row, ...change24h(row.last, open, openTimeNs) });
    this.changed.add(id);
  }

  /** A reference asked and not answered (the venue holds no candle of the last 24 h): asked
   * again after REFERENCE_MS, not at once. */
  referenceMissing(venue: string, symbol: string, nowMs = Date.now()): void {
    this.referenceAskedMs.set(key(venue, symbol), nowMs);
  }

  /** The symbols of `venue` with a row whose reference was never asked for, or last asked
   * REFERENCE_MS ago or more, by symbol. */
  referencesDue(venue: string, nowMs = Date.now()): string[] {
    const due = [];
    for (const row of this.rows.values()) {
      if (row.venue !== venue) continue;
      const asked = this.referenceAskedMs.get(key(venue, row.symbol));
      if (asked === undefined || nowMs - asked >= REFERENCE_MS) due.push(row.symbol);
    }
    return due.sort();
  }

  /** The ticker taken as its symbol's newest unless an older one; whether it was. */
  private take(venue: string, symbol: string, tsEventNs: bigint, ticker: Ticker, source: BoardRow["source"]): boolean {
    const id = key(venue, symbol);
    const previous = this.rows.get(id);
    if (previous !== undefined && previous.tsEventNs > tsEventNs) return false; // the bus's redelivery of an older one
    const opening = previous?.opening || (isDecimal(ticker.lastPrice) ? ticker.lastPrice : "");
    const last = ticker.lastPrice;
    const change = opening !== "" && isDecimal(last) ? subtractDecimal(last, opening) : "";
    const base = Number(opening);
    const changePercent = change === "" || !(base > 0) ? null : (Number(change) / base) * 100;
    const reference = this.references.get(id);
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
      ...change24h(last, reference?.price ?? "", reference?.ns ?? 0n),
      source,
      baseVolume: ticker.baseVolume24h,
      quoteVolume: ticker.quoteVolume24h,
    });
    this.venueNames.add(venue);
    this.changed.add(id);
    return true;
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

  /** A row's trend over 24 h: 1 up, -1 down, 0 unchanged or unknown. */
  static trend24h(row: BoardRow): number {
    return row.change24h === "" ? 0 : compareDecimal(row.change24h, "0");
  }
}
