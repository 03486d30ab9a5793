// The market board's state: every venue's tickers, the newest per (venue, symbol) kept as they
// come and drawn at most once a frame (conflated: a symbol whose ticker changed three times in a
// frame is drawn once, with the newest), each with its change since the board opened (the first
// last price the board saw of it), its change over 24 hours (against its reference: the venue's
// price 24 h ago, its ticker's open_24h where the venue states it, else the open of the venue's
// first 1m candle of the last 24 h, asked for apart) and the venue's 24h volume. Tickers come two ways:
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
  /** The price 24 h ago ("" until known): the ticker's open_24h where the venue states it, else
   * the open of the venue's first 1m candle of the last 24 h. */
  reference: string;
  /** Its time (ns; 0n until known): 24 h before the ticker stating it, or that candle's open time
   * (later than 24 h ago when the venue holds less). */
  referenceNs: bigint;
  /** Where the reference came from: the venue's ticker, its candles, or not known yet (""). */
  referenceFrom: ReferenceFrom;
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

export type ReferenceFrom = "ticker" | "candle" | "";

/** A day in ns: a ticker's open_24h is the price this long before the ticker. */
export const DAY_NS = 86_400_000_000_000n;

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
  referenceFrom: ReferenceFrom = reference === "" ? "" : "candle",
): Pick<BoardRow, "reference" | "referenceNs" | "referenceFrom" | "change24h" | "change24hPercent"> {
  if (reference === "" || !isDecimal(last)) {
    return { reference, referenceNs, referenceFrom, change24h: "", change24hPercent: null };
  }
  const change = subtractDecimal(last, reference);
  const base = Number(reference);
  return {
    reference,
    referenceNs,
    referenceFrom,
    change24h: change,
    change24hPercent: base > 0 ? (Number(change) / base) * 100 : null,
  };
}

interface Reference {
  price: string;
  ns: bigint;
  from: ReferenceFrom;
}

export class Board {
  private readonly rows = new Map<string, BoardRow>();
  /** When the stream last fed each row (ms), by key. */
  private readonly streamedMs = new Map<string, number>();
  private readonly references = new Map<string, Reference>();
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
      const ts = item.tsEventNs > 0n ? item.tsEventNs : receivedNs;
      const streamed = this.streamedMs.get(key(venue, item.symbol));
      if (streamed !== undefined && nowMs - streamed < STREAM_FRESH_MS) {
        // The stream's ticker stays; its 24h open, where it states none (Binance spot's stream is
        // best bid and ask only), is the snapshot's.
        if (this.stated(venue, item.symbol, ts, item.ticker)) this.changed.add(key(venue, item.symbol));
        continue;
      }
      if (this.take(venue, item.symbol, ts, item.ticker, "snapshot")) taken += 1;
    }
    return taken;
  }

  /** The symbol's price 24 h ago from its candles (the fallback for a venue whose tickers state
   * no open_24h): `open` of the venue's first 1m candle since then, opened at `openTimeNs`; asked
   * again after REFERENCE_MS (referencesDue). A ticker's open_24h, once seen, wins over it. */
  reference(venue: string, symbol: string, open: string, openTimeNs: bigint, nowMs = Date.now()): void {
    const id = key(venue, symbol);
    this.referenceAskedMs.set(id, nowMs);
    if (!isDecimal(open) || this.references.get(id)?.from === "ticker") return;
    this.setReference(id, { price: open, ns: openTimeNs, from: "candle" });
  }

  /** The ticker's 24h open taken as the row's reference when it states one (and is not older
   * than the one held); whether it was. */
  private stated(venue: string, symbol: string, tsEventNs: bigint, ticker: Ticker): boolean {
    if (!isDecimal(ticker.open24h)) return false;
    const id = key(venue, symbol);
    const held = this.references.get(id);
    const ns = tsEventNs - DAY_NS;
    if (held?.from === "ticker" && (held.ns > ns || (held.ns === ns && held.price === ticker.open24h))) return false;
    this.setReference(id, { price: ticker.open24h, ns, from: "ticker" });
    return true;
  }

  private setReference(id: string, reference: Reference): void {
    this.references.set(id, reference);
    const row = this.rows.get(id);
    if (row === undefined) return;
    this.rows.set(id, { ...row, ...change24h(row.last, reference.price, reference.ns, reference.from) });
    this.changed.add(id);
  }

  /** A reference asked and not answered (the venue holds no candle of the last 24 h): asked
   * again after REFERENCE_MS, not at once. */
  referenceMissing(venue: string, symbol: string, nowMs = Date.now()): void {
    this.referenceAskedMs.set(key(venue, symbol), nowMs);
  }

  /** The symbols of `venue` whose 24h reference is to be asked of its candles: a row whose
   * tickers state no 24h open, never asked for, or last asked REFERENCE_MS ago or more, by
   * symbol. */
  referencesDue(venue: string, nowMs = Date.now()): string[] {
    const due = [];
    for (const row of this.rows.values()) {
      if (row.venue !== venue || row.referenceFrom === "ticker") continue;
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
    this.stated(venue, symbol, tsEventNs, ticker);
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
      ...change24h(last, reference?.price ?? "", reference?.ns ?? 0n, reference?.from ?? ""),
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
