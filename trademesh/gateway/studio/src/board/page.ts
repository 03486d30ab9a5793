// The market board (page `#/market`): every venue's tickers side by side, a column per venue (the
// venues the registry lists, and any the bridge has tickers of), a row per symbol with bid, ask,
// last, the change since the board opened, the change over 24 h and the venue's 24h volume. Every
// instrument's ticker comes at once from each venue (MarketData.GetTickers, one call a venue every
// PRICES_MS, targeted at it), so every row is there at once, venues whose tickers are not on the
// bus included; the bridge's live stream (LiveData.Subscribe, KIND_TICKERS of every venue and
// symbol, on the tab's Mux stream) keeps the rows it carries current between those (a row it fed
// lately keeps the stream's ticker: board/model). The 24h change is against each symbol's price
// 24 h ago: the ticker's open_24h where the venue states it (Binance, Binance USD-M, Bybit, OKX,
// Kraken's stream, the sim, node-ref: docs/derivatives.md, "24h open"), taken from every ticker that
// states it, a GetTickers answer's too while the stream feeds the row. Only where a venue's
// tickers leave it empty (Coinbase, Deribit) is it asked of its candles: the open of the venue's
// first 1m candle since then (MarketData.GetCandles, limit 1, a few symbols at a time, each again
// after 10 minutes, once the venue's first GetTickers was asked); a venue holding less history
// than a day gives its first candle's. The cell's title says which, and since when. A venue that cannot answer
// GetTickers (UNIMPLEMENTED: no all_tickers) is asked again after VENUE_RETRY_MS, its rows from
// the stream only. `data-snapshots` on the board counts the GetTickers answers taken. The board
// keeps the newest of each symbol and draws at most 4 frames a second (one
// each 250 ms at most, only the rows that changed, and none while a pointer is pressed:
// ui/press). Figures are shown as people read them (board/cells, lib/money): prices at the
// instrument's tick once the venue's instruments are known (api/instruments; every row is drawn
// again when they come), the volume rounded in its asset, each exact value in its title and
// data-exact. `data-frames` on the board counts its frames and `data-tickers` the tickers it
// took, for tests and tools. Its loops run only while it is shown.
import { type Clients, unary } from "../api/clients";
import { type Instruments, instrumentsOf } from "../api/instruments";
import type { LiveStreams } from "../api/live";
import { listVenues } from "../api/venues";
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";
import { Kind, LiveData, type SubscribeResponse } from "../gen/trademesh/livedata/v1/livedata_pb";
import { OverflowPolicy } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { follow, poll } from "../lib/loop";
import { exact } from "../lib/money";
import { fill, h, panel, table } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import { afterRelease } from "../ui/press";
import { type Cell, FIGURES, rowCells } from "./cells";
import { Board, type BoardRow, DAY_NS } from "./model";

/** At most 4 frames a second. */
export const FRAME_MS = 250;
const VENUES_POLL_MS = 10_000;
/** Every instrument's ticker, one GetTickers call a venue, this often. */
export const PRICES_MS = 3_000;
/** A venue that did not answer GetTickers is asked again after this long. */
const VENUE_RETRY_MS = 30_000;
/** How often due 24h references are asked for, and how many a venue at a time. */
const REFERENCES_MS = 1_000;
const REFERENCES_AT_ONCE = 4;
const MINUTE_NS = 60_000_000_000n;
const HEADINGS = ["symbol", "bid", "ask", "last", "change", "24h change", "24h volume"];

/** A cell's figure, replaced only when what it shows or its exact value changed. */
function show(td: HTMLElement, cell: Cell): void {
  const current = td.firstElementChild;
  if (current !== null && current.textContent === cell.shown && (current.getAttribute("title") ?? "") === cell.exact) {
    return;
  }
  fill(td, exact(cell.exact, cell.shown, "", cell.kind));
}

/** One venue's column: its rows by symbol. */
class VenueColumn {
  readonly root: HTMLElement;
  private readonly body = h("tbody", {});
  private readonly rows = new Map<string, HTMLTableRowElement>();

  constructor(readonly venue: string) {
    const title = h("h3", {}, venue);
    this.root = h("section", { class: "venue-board", "data-venue": venue }, title, table(HEADINGS, this.body));
    fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: HEADINGS.length }, "no tickers yet")));
  }

  /** The row of `row.symbol`, `tick` its instrument's tick size (undefined: not known yet). */
  draw(row: BoardRow, tick: string | undefined): void {
    let tr = this.rows.get(row.symbol);
    if (tr === undefined) {
      tr = this.insert(row.symbol);
      this.rows.set(row.symbol, tr);
    }
    const trend = Board.trend(row);
    const cells = rowCells(row, tick);
    for (const col of FIGURES) {
      const td = tr.querySelector<HTMLElement>(`td[data-col="${col}"]`);
      if (td !== null) show(td, cells[col]);
    }
    Object.assign(tr.dataset, {
      bid: row.bid,
      ask: row.ask,
      last: row.last,
      ts: String(row.tsEventNs),
      change: row.change,
      change24h: row.change24h,
      reference: row.reference,
      referenceNs: String(row.referenceNs),
      referenceFrom: row.referenceFrom,
      source: row.source,
      volume: cells.volume.exact,
      trend: trend > 0 ? "up" : trend < 0 ? "down" : "flat",
    });
    const since = tr.querySelector<HTMLElement>('td[data-col="change24h"]');
    if (since !== null) since.title = sinceText(row);
  }

  /** A new row in its place by symbol (the first replaces "no tickers yet"). */
  private insert(symbol: string): HTMLTableRowElement {
    this.body.querySelector("tr.empty")?.remove();
    const cells = FIGURES.map((col) => h("td", { "data-col": col, class: "num" }));
    const tr = h("tr", { "data-symbol": symbol }, h("td", { "data-col": "symbol" }, symbol), ...cells);
    const after = [...this.rows.keys()].filter((s) => s < symbol).sort().pop();
    const previous = after === undefined ? undefined : this.rows.get(after);
    const before = previous === undefined ? this.body.firstElementChild : previous.nextElementSibling;
    this.body.insertBefore(tr, before);
    return tr;
  }
}

export class MarketBoardPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly venues = h("div", { id: "board-venues", class: "board-venues" });
  private board = new Board();
  private readonly instruments: Instruments;
  private columns = new Map<string, VenueColumn>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameMs = Number.NEGATIVE_INFINITY;
  private frames = 0;
  private tickers = 0;
  private snapshots = 0;
  /** Per venue, when it may be asked for its tickers again after a failure (ms). */
  private readonly venueRetryMs = new Map<string, number>();
  /** The venues asked for their tickers at least once (answered or not): only their rows' 24h
   * references are asked of candles, so a ticker's open_24h comes first. */
  private readonly pricesAsked = new Set<string>();

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    this.instruments = instrumentsOf(clients, loops.appSignal);
    const say =
      "every venue's tickers, all at once every few seconds and live between, at most 4 frames a " +
      "second; change since the board opened and over 24 h; " +
      "prices at the instrument's tick, volume over the venue's last 24 h (exact on hover)";
    const hint = h("p", { class: "hint" }, say);
    const board = panel("Market board", "market-board", hint, this.venues);
    this.status = board.status;
    this.root = h("main", { id: "market-page", class: "page" }, board.root);
  }

  /** Starts the board afresh (its changes count from now) unless it runs. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    this.board = new Board();
    this.columns = new Map();
    this.frames = 0;
    this.tickers = 0;
    this.snapshots = 0;
    this.venueRetryMs.clear();
    this.pricesAsked.clear();
    this.venues.dataset.frames = "0";
    this.venues.dataset.tickers = "0";
    this.venues.dataset.snapshots = "0";
    fill(this.venues);
    this.instruments.onLoad(() => {
      this.board.touchAll(); // a venue's ticks came: its rows read at them
      this.schedule();
    }, signal);
    void poll(this.loops.context(signal, this.status), VENUES_POLL_MS, () => this.loadVenues(signal));
    void poll(this.loops.context(signal, this.status), PRICES_MS, () => this.loadPrices(signal));
    void poll(this.loops.context(signal, this.status), REFERENCES_MS, () => this.loadReferences(signal));
    const request = { venues: [], symbols: [], kinds: [Kind.TICKERS], overflowPolicy: OverflowPolicy.CONFLATE };
    void follow(
      this.loops.context(signal, this.status),
      (signal, opened) => this.live.subscribe(LiveData.method.subscribe, request, { signal, onAdded: opened }),
      (message) => this.take(message),
    );
  }

  hide(): void {
    this.loops.stop();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async loadVenues(signal: AbortSignal): Promise<void> {
    const instances = await listVenues(this.clients, signal);
    if (signal.aborted) return;
    for (const instance of instances) this.board.venue(instance.name);
    this.schedule();
  }

  /** Every venue's tickers at once (GetTickers, the venues together); one that fails is left
   * to the stream until VENUE_RETRY_MS on, without failing the others. */
  private async loadPrices(signal: AbortSignal): Promise<void> {
    if (this.board.venues().length === 0) await this.loadVenues(signal);
    const now = Date.now();
    const venues = this.board.venues().filter((venue) => (this.venueRetryMs.get(venue) ?? 0) <= now);
    await Promise.all(
      venues.map(async (venue) => {
        try {
          const reply = await this.clients.marketData.getTickers({ symbols: [] }, unary(signal, venue));
          if (signal.aborted) return;
          this.board.snapshot(venue, reply.tickers, BigInt(Date.now()) * 1_000_000n);
          this.snapshots += 1;
        } catch {
          this.venueRetryMs.set(venue, Date.now() + VENUE_RETRY_MS);
        }
        this.pricesAsked.add(venue);
      }),
    );
    this.venues.dataset.snapshots = String(this.snapshots);
    this.schedule();
  }

  /** The 24h references due of rows whose tickers state no open_24h, a few a venue at a time:
   * the open of the venue's first 1m candle of the last 24 h (none: asked again later). */
  private async loadReferences(signal: AbortSignal): Promise<void> {
    const asked = this.board.venues().flatMap((venue) =>
      !this.pricesAsked.has(venue) || (this.venueRetryMs.get(venue) ?? 0) > Date.now()
        ? []
        : this.board.referencesDue(venue).slice(0, REFERENCES_AT_ONCE).map((symbol) => ({ venue, symbol })),
    );
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const startNs = ((nowNs - DAY_NS) / MINUTE_NS) * MINUTE_NS;
    await Promise.all(
      asked.map(async ({ venue, symbol }) => {
        try {
          const request = { symbol, timeframe: Timeframe.TIMEFRAME_1_MINUTE, startNs, endNs: 0n, limit: 1 };
          const reply = await this.clients.marketData.getCandles(request, unary(signal, venue));
          const first = reply.candles[0];
          if (first === undefined) this.board.referenceMissing(venue, symbol);
          else this.board.reference(venue, symbol, first.open, first.openTimeNs);
        } catch {
          this.board.referenceMissing(venue, symbol);
        }
      }),
    );
    if (asked.length > 0) this.schedule();
  }

  private take(message: SubscribeResponse): void {
    for (const event of message.events) {
      if (event.payload.case !== "ticker") continue;
      this.board.ticker(event.venue, event.symbol, event.tsEventNs, event.payload.value);
      this.tickers += 1;
    }
    this.venues.dataset.tickers = String(this.tickers);
    this.schedule();
  }

  /** The next frame, FRAME_MS after the last one at the earliest. */
  private schedule(): void {
    if (this.timer !== null || this.loops.signal === undefined) return;
    const wait = Math.max(0, this.lastFrameMs + FRAME_MS - performance.now());
    this.timer = setTimeout(() => afterRelease(() => this.frame()), wait);
  }

  private frame(): void {
    this.timer = null;
    if (this.loops.signal === undefined) return;
    this.lastFrameMs = performance.now();
    for (const venue of this.board.venues()) this.column(venue);
    for (const row of this.board.takeChanged()) {
      this.column(row.venue).draw(row, this.instruments.tick(row.venue, row.symbol));
    }
    this.frames += 1;
    this.venues.dataset.frames = String(this.frames);
  }

  /** The venue's column, made in its place by name when new. */
  private column(venue: string): VenueColumn {
    let column = this.columns.get(venue);
    if (column === undefined) {
      column = new VenueColumn(venue);
      this.columns.set(venue, column);
      const next = [...this.columns.keys()].filter((v) => v > venue).sort()[0];
      this.venues.insertBefore(column.root, next === undefined ? null : (this.columns.get(next)?.root ?? null));
    }
    return column;
  }
}

/** The 24h change cell's title: what it is measured against (the venue's stated 24h open, or its
 * candle's), and since when when the venue holds less than a day. */
export function sinceText(row: BoardRow): string {
  if (row.reference === "") return "the change over 24 h: the venue's price then is not known yet";
  if (row.referenceFrom === "ticker") {
    return `${row.change24h} against ${row.reference}, the venue's price 24 h ago (its ticker's 24h open)`;
  }
  const since = new Date(Number(row.referenceNs / 1_000_000n)).toISOString().replace(".000Z", "Z");
  const young = BigInt(Date.now()) * 1_000_000n - row.referenceNs < DAY_NS - 2n * MINUTE_NS;
  return `${row.change24h} against ${row.reference}, the open of the venue's 1m candle at ${since}${
    young ? " (the venue holds less than 24 h: the change since then)" : ""
  }`;
}
