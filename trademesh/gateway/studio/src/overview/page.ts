// The Overview page (`#/`, the page shown after log-in): the mesh at a glance. The regime board:
// every market's regime from Overwatch (docs/overwatch.md), its board then each change as it
// happens (Overwatch.StreamRegimes on the tab's Mux stream), its figures (ADX, the ratios, the
// bars read) refreshed from Overwatch.GetBoard every few seconds (a change carries them, but a
// market whose regime holds sends none), sortable by any column and filtered by venue; beside it
// the strategies and the risk governor from the overview stream (Overwatch.StreamOverview on the
// tab's Mux stream, overview/mesh-panel), and the services board's summary (services/model, as
// the Services page computes it). Its loops run only while it is shown.
import { type Clients, unary } from "../api/clients";
import type { LiveStreams } from "../api/live";
import { Overwatch } from "../gen/trademesh/overwatch/v1/overwatch_pb";
import type { Snapshot } from "../gen/trademesh/services/v1/services_pb";
import { clockTime } from "../lib/format";
import { follow, poll } from "../lib/loop";
import { alertBadge } from "../services/page";
import { healthSummary, summaryText, uptime } from "../services/model";
import { fill, h, panel, throttled } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import { MeshOverview } from "./mesh";
import { MeshPanel } from "./mesh-panel";
import { type MarketRow, RegimeBoard, REGIMES, regimeLook, type SortKey, timeframeLabel } from "./model";

const WATCH_INTERVAL_MS = 2000;
const FIGURES_POLL_MS = 5000;
const NS_PER_MS = 1_000_000n;
const NS_PER_DAY = 86_400_000_000_000n;
const ALL_VENUES = "";
const COLUMNS: readonly { title: string; sort: SortKey | null; hint: string }[] = [
  { title: "venue", sort: "market", hint: "venue, then symbol" },
  { title: "symbol", sort: "market", hint: "venue, then symbol" },
  { title: "tf", sort: null, hint: "the bars' timeframe" },
  { title: "regime", sort: "regime", hint: "the market's regime" },
  { title: "since", sort: "since", hint: "the open time of the regime's first bar" },
  { title: "ADX", sort: "adx", hint: "Wilder's average directional index (trend at 30 and over)" },
  { title: "+DI / -DI", sort: null, hint: "the directional indicators: which side leads" },
  { title: "vol ratio", sort: "vol_ratio", hint: "realised volatility over its long-run level (high at 1.8)" },
  { title: "volume ratio", sort: "volume_ratio", hint: "mean volume over its long-run level (thin at 0.35)" },
  { title: "bars", sort: null, hint: "closed bars read" },
  { title: "last bar", sort: null, hint: "the open time of the last bar read" },
];

function regimeBadge(row: MarketRow): HTMLElement {
  const look = regimeLook(row.regime);
  return h(
    "span",
    { class: `badge regime regime-${look.word}`, title: look.meaning },
    h("span", { class: "glyph", "aria-hidden": "true" }, look.glyph),
    ` ${look.label}`,
  );
}

/** A bar's time: its clock time today, with its date (UTC) when older than a day. */
function barTime(ns: bigint, nowNs: bigint): string {
  if (nowNs - ns < NS_PER_DAY) return clockTime(ns);
  return `${new Date(Number(ns / NS_PER_MS)).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Since when the regime holds, and for how long: "08:01:05.000 (3 min)". */
function since(row: MarketRow, nowNs: bigint): string {
  if (row.sinceNs === 0n) return "–";
  return `${barTime(row.sinceNs, nowNs)} (${uptime(nowNs - row.sinceNs)})`;
}

function marketRow(row: MarketRow, nowNs: bigint): HTMLElement {
  const look = regimeLook(row.regime);
  const f = row.features;
  return h(
    "tr",
    {
      "data-venue": row.venue,
      "data-symbol": row.symbol,
      "data-tf": timeframeLabel(row.timeframe),
      "data-regime": look.word,
      "data-since": String(row.sinceNs),
      "data-adx": f === undefined ? "" : String(f.adx),
      "data-bars": String(row.bars),
      "data-changes": String(row.changes),
    },
    h("td", {}, row.venue),
    h("td", {}, row.symbol),
    h("td", {}, timeframeLabel(row.timeframe)),
    h("td", { "data-col": "regime" }, regimeBadge(row)),
    h("td", { "data-col": "since" }, since(row, nowNs)),
    h("td", { class: "num", "data-col": "adx" }, f === undefined ? "–" : f.adx.toFixed(1)),
    h("td", { class: "num" }, f === undefined ? "–" : `${f.diPlus.toFixed(1)} / ${f.diMinus.toFixed(1)}`),
    h("td", { class: "num", "data-col": "vol_ratio" }, f === undefined ? "–" : f.volRatio.toFixed(2)),
    h("td", { class: "num", "data-col": "volume_ratio" }, f === undefined ? "–" : f.volumeRatio.toFixed(2)),
    h("td", { class: "num" }, row.bars === 0n ? "–" : String(row.bars)),
    h("td", {}, row.lastBarNs === 0n ? "–" : barTime(row.lastBarNs, nowNs)),
  );
}

export class OverviewPage {
  readonly root: HTMLElement;
  private readonly regimesStatus: HTMLElement;
  private readonly healthStatus: HTMLElement;
  private readonly meshStatus: HTMLElement;
  private readonly mesh = new MeshOverview();
  private readonly meshPanel = new MeshPanel();
  private readonly figuresStatus = h("span", { id: "regimes-figures-status", class: "status", "data-tone": "ok" });
  private readonly board = new RegimeBoard();
  private readonly head = h("tr", {});
  private readonly body = h("tbody", { id: "regimes-rows" });
  private readonly venueSelect = h("select", { id: "regimes-venue", "aria-label": "venue" });
  private readonly summary = h("p", { id: "overview-health-summary" });
  private readonly notServing = h("ul", { id: "overview-not-serving" });
  private readonly alerts = h("div", { id: "overview-alerts", class: "alerts" });
  private sortKey: SortKey = "market";
  private descending = false;
  // The regimes' stream and the figures' poll draw the table at most once a frame (a market's
  // every bar moves a regime: one message each, the whole table drawn for each).
  private readonly redraw = throttled(() => this.draw());
  // The venues the picker offers (drawn again only when they change).
  private offered = "";

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    this.venueSelect.addEventListener("change", () => this.draw());
    const regimes = panel(
      "Market regimes",
      "regimes",
      h("div", { class: "controls" }, h("label", {}, "Venue ", this.venueSelect)),
      h(
        "div",
        { class: "scroll" },
        h("table", { id: "regimes-table" }, h("thead", {}, this.head), this.body),
      ),
      h(
        "p",
        { class: "who" },
        "Overwatch's regime per market from its closed bars (docs/overwatch.md): ",
        `${REGIMES.map((r) => `${regimeLook(r).glyph} ${regimeLook(r).label}`).join(", ")} (warming up).`,
      ),
      h("p", { class: "who" }, "Figures (GetBoard every few seconds): ", this.figuresStatus),
    );
    this.regimesStatus = regimes.status;
    const health = panel(
      "Mesh health",
      "overview-health",
      this.summary,
      this.notServing,
      h("h3", {}, "Alerts firing"),
      this.alerts,
      h("p", {}, h("a", { href: "#/services" }, "Every service on the Services page")),
    );
    this.healthStatus = health.status;
    const stream = panel(
      "Strategies and risk",
      "overview-mesh",
      this.meshPanel.root,
      h("p", {}, h("a", { href: "#/risk" }, "The Risk page"), " · ", h("a", { href: "#/ledger" }, "the Ledger page")),
    );
    this.meshStatus = stream.status;
    const side = h("div", { class: "overview-side" }, stream.root, health.root);
    this.root = h("main", { id: "overview-page", class: "page overview", hidden: true }, regimes.root, side);
    this.drawHead();
    this.draw();
    this.meshPanel.draw(this.mesh);
  }

  /** Follows the regimes and the services board while the page is shown. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    void follow(
      this.loops.context(signal, this.regimesStatus),
      (sub, opened) => this.live.subscribe(Overwatch.method.streamRegimes, {}, { signal: sub, onAdded: opened }),
      (message) => {
        this.board.take(message);
        this.redraw();
      },
    );
    void follow(
      this.loops.context(signal, this.meshStatus),
      (sub, opened) => this.live.subscribe(Overwatch.method.streamOverview, {}, { signal: sub, onAdded: opened }),
      (message) => {
        this.mesh.take(message.overview);
        this.meshPanel.draw(this.mesh);
      },
    );
    void poll(this.loops.context(signal, this.figuresStatus), FIGURES_POLL_MS, async () => {
      const reply = await this.clients.overwatch.getBoard({}, unary(signal));
      if (signal.aborted || reply.board === undefined) return;
      this.board.refresh(reply.board);
      this.redraw();
    });
    void follow(
      this.loops.context(signal, this.healthStatus),
      (sub) => this.clients.services.watch({ intervalMs: WATCH_INTERVAL_MS }, { signal: sub }),
      (reply) => {
        if (reply.snapshot !== undefined) this.drawHealth(reply.snapshot);
      },
    );
  }

  /** Stops following (another page is shown). */
  hide(): void {
    this.loops.stop();
  }

  private sortBy(key: SortKey): void {
    if (this.sortKey === key) this.descending = !this.descending;
    else [this.sortKey, this.descending] = [key, false];
    this.drawHead();
    this.draw();
  }

  private drawHead(): void {
    const cells = COLUMNS.map((column) => {
      if (column.sort === null) return h("th", { title: column.hint }, column.title);
      const key = column.sort;
      const current = key === this.sortKey;
      const order = current ? (this.descending ? "descending" : "ascending") : "none";
      const arrow = current ? (this.descending ? " ↓" : " ↑") : "";
      const button = h("button", { type: "button", class: "sort", "data-sort": key }, column.title + arrow);
      button.addEventListener("click", () => this.sortBy(key));
      return h("th", { title: column.hint, "aria-sort": order }, button);
    });
    fill(this.head, ...cells);
  }

  private drawVenues(): void {
    const chosen = this.venueSelect.value;
    const venues = this.board.venues();
    if (chosen !== ALL_VENUES && !venues.includes(chosen)) venues.push(chosen); // kept while it is gone
    const offered = venues.sort().join("\n");
    if (offered === this.offered && this.venueSelect.options.length > 0) return;
    this.offered = offered;
    const options = [ALL_VENUES, ...venues].map((v) =>
      h("option", { value: v }, v === ALL_VENUES ? "all venues" : v),
    );
    fill(this.venueSelect, ...options);
    this.venueSelect.value = chosen;
  }

  private draw(): void {
    this.drawVenues();
    const venue = this.venueSelect.value === ALL_VENUES ? null : this.venueSelect.value;
    const rows = this.board.rows(venue, this.sortKey, this.descending);
    this.body.dataset.count = String(rows.length);
    this.body.dataset.updates = String(this.board.updates);
    if (rows.length === 0) {
      const text = this.board.updates === 0 ? "waiting for Overwatch's board" : "no market on the board (yet)";
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, text)));
      return;
    }
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    fill(this.body, ...rows.map((row) => marketRow(row, nowNs)));
  }

  private drawHealth(snapshot: Snapshot): void {
    const summary = healthSummary(snapshot);
    this.summary.textContent = summaryText(summary);
    this.summary.dataset.total = String(summary.total);
    this.summary.dataset.notServing = String(summary.notServing.length);
    const down = summary.notServing.map((name) => h("li", { class: "warn" }, `not serving: ${name}`));
    fill(this.notServing, ...(down.length ? down : [h("li", {}, "every instance serving")]));
    const firing = [...snapshot.meshAlerts, ...snapshot.services.flatMap((s) => s.alerts)];
    fill(this.alerts, ...(firing.length ? firing.map(alertBadge) : ["none"]));
  }
}
