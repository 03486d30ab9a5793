// The market board (page `#/market`): every venue's tickers side by side, a column per venue (the
// venues the registry lists, and any the bridge has tickers of), a row per symbol with bid, ask,
// last, the change since the board opened and the venue's 24h volume. The tickers come from the
// bridge's live stream (LiveData.Subscribe, KIND_TICKERS of every venue and symbol) on the tab's
// Mux stream; the board keeps the newest of each symbol and draws at most 4 frames a second (one
// each 250 ms at most, only the rows that changed, and none while a pointer is pressed:
// ui/press). Figures are shown as people read them (board/cells, lib/money): prices at the
// instrument's tick once the venue's instruments are known (api/instruments; every row is drawn
// again when they come), the volume rounded in its asset, each exact value in its title and
// data-exact. `data-frames` on the board counts its frames and `data-tickers` the tickers it
// took, for tests and tools. Its loops run only while it is shown.
import type { Clients } from "../api/clients";
import { type Instruments, instrumentsOf } from "../api/instruments";
import type { LiveStreams } from "../api/live";
import { listVenues } from "../api/venues";
import { Kind, LiveData, type SubscribeResponse } from "../gen/trademesh/livedata/v1/livedata_pb";
import { OverflowPolicy } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import type { Connection } from "../lib/connection";
import { childController, follow, type LoopContext, poll } from "../lib/loop";
import { exact } from "../lib/money";
import { fill, h, panel, showStatus, table } from "../ui/dom";
import { afterRelease } from "../ui/press";
import { type Cell, FIGURES, rowCells } from "./cells";
import { Board, type BoardRow } from "./model";

/** At most 4 frames a second. */
export const FRAME_MS = 250;
const VENUES_POLL_MS = 10_000;
const HEADINGS = ["symbol", "bid", "ask", "last", "change", "24h volume"];

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
      volume: cells.volume.exact,
      trend: trend > 0 ? "up" : trend < 0 ? "down" : "flat",
    });
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
  private controller: AbortController | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameMs = Number.NEGATIVE_INFINITY;
  private frames = 0;
  private tickers = 0;

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly appSignal: AbortSignal,
  ) {
    this.instruments = instrumentsOf(clients, appSignal);
    const say =
      "every venue's tickers, at most 4 frames a second; change since the board opened; " +
      "prices at the instrument's tick, volume over the venue's last 24 h (exact on hover)";
    const hint = h("p", { class: "hint" }, say);
    const board = panel("Market board", "market-board", hint, this.venues);
    this.status = board.status;
    this.root = h("main", { id: "market-page", class: "page" }, board.root);
  }

  /** Starts the board afresh (its changes count from now) unless it runs. */
  show(): void {
    if (this.controller !== null) return;
    this.board = new Board();
    this.columns = new Map();
    this.frames = 0;
    this.tickers = 0;
    this.venues.dataset.frames = "0";
    this.venues.dataset.tickers = "0";
    fill(this.venues);
    this.controller = childController(this.appSignal);
    const signal = this.controller.signal;
    this.instruments.onLoad(() => {
      this.board.touchAll(); // a venue's ticks came: its rows read at them
      this.schedule();
    }, signal);
    void poll(this.context(signal), VENUES_POLL_MS, () => this.loadVenues(signal));
    const request = { venues: [], symbols: [], kinds: [Kind.TICKERS], overflowPolicy: OverflowPolicy.CONFLATE };
    void follow(
      this.context(signal),
      (signal, opened) => this.live.subscribe(LiveData.method.subscribe, request, { signal, onAdded: opened }),
      (message) => this.take(message),
    );
  }

  hide(): void {
    this.controller?.abort();
    this.controller = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private context(signal: AbortSignal): LoopContext {
    return { signal, connection: this.connection, onStatus: (status) => showStatus(this.status, status) };
  }

  private async loadVenues(signal: AbortSignal): Promise<void> {
    const instances = await listVenues(this.clients, signal);
    if (signal.aborted) return;
    for (const instance of instances) this.board.venue(instance.name);
    this.schedule();
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
    if (this.timer !== null || this.controller === null) return;
    const wait = Math.max(0, this.lastFrameMs + FRAME_MS - performance.now());
    this.timer = setTimeout(() => afterRelease(() => this.frame()), wait);
  }

  private frame(): void {
    this.timer = null;
    if (this.controller === null) return;
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
