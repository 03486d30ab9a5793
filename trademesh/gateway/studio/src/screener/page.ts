// The Screener page (`#/screener`, `#/screener/<screen>`): the screens the Screener runs
// (ListScreens, every 30 s), the chosen one's definition (its venue and universe, filters, score,
// top N, cadence, hold), and its latest result live (Screener.StreamResults on the tab's Mux
// stream: the latest, then each evaluation), sortable by any column, with the time it was
// evaluated at and its counts (docs/screener.md). Money metrics are rounded to the cent, each
// exact value in its title and data-exact (lib/money). Its loops run only while it is shown.
import { type Clients, unary } from "../api/clients";
import type { LiveStreams } from "../api/live";
import {
  type BarWindows,
  type ScreenDefinition,
  Screener,
  type ScreenResult,
} from "../gen/trademesh/screener/v1/screener_pb";
import { clockTime } from "../lib/format";
import { childController, follow, poll } from "../lib/loop";
import { exact } from "../lib/money";
import { fill, h, panel } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import {
  cadenceText,
  isMoneyMetric,
  listText,
  metricColumns,
  metricText,
  type ResultRow,
  rowsOf,
  type SortKey,
  sortRows,
  timeframeText,
  weightsText,
} from "./model";

const SCREENS_POLL_MS = 30_000;

/** The hash of the page with `screen` chosen (the first by name when null). */
export function screenerHash(screen: string | null): string {
  return screen === null ? "#/screener" : `#/screener/${encodeURIComponent(screen)}`;
}

function barsText(bars: BarWindows): string {
  const windows = `momentum ${bars.momentum}, volatility ${bars.volatility}, volume ${bars.volume}`;
  return `${timeframeText(bars.timeframe)} bars: ${windows}`;
}

function definitionRows(screen: ScreenDefinition): [string, string, string][] {
  const u = screen.universe;
  const bars = screen.bars;
  return [
    ["venue", "venue", screen.venue],
    ["cadence", "cadence_s", `${cadenceText(screen.cadenceS)} (at multiples of it)`],
    ["top N", "top", String(screen.top)],
    ["hold", "min_hold_s", `${screen.minHoldS} s (a follower's minimum hold)`],
    ["inputs older than", "max_age_s", `${screen.maxAgeS} s are missing`],
    ["quote assets", "quote_assets", listText(u?.quoteAssets ?? [])],
    ["kinds", "kinds", listText(u?.kinds ?? [])],
    ["symbols", "symbols", listText(u?.symbols ?? [], "all")],
    ["excluded", "exclude", listText(u?.exclude ?? [], "none")],
    ["bars", "bars", bars === undefined ? "–" : barsText(bars)],
    ["filters", "filters", listText(screen.filters, "none")],
    ["score", "score", `${weightsText(screen)} (${screen.score?.normalise ?? "rank"}-normalised)`],
    ["needed", "needed", listText(screen.needed, "none")],
    ["shown", "show", listText(screen.show, "none")],
    ["file", "source", screen.source],
  ];
}

/** A metric's cell: money rounded with its exact value on hover, any other as it came. */
function metricCell(row: ResultRow, metric: string): HTMLElement {
  const value = row.metrics.get(metric);
  const shown = metricText(metric, value);
  const money = isMoneyMetric(metric) && value !== undefined && value !== "";
  return h("td", { class: "num", "data-metric": metric }, money ? exact(value, shown, "", "amount") : shown);
}

function resultRow(row: ResultRow, metrics: readonly string[]): HTMLElement {
  return h(
    "tr",
    {
      "data-rank": String(row.rank),
      "data-symbol": row.symbol,
      "data-score": String(row.score),
      "data-top": String(row.inTop),
      class: row.inTop ? "in-top" : undefined,
    },
    h("td", { class: "num" }, String(row.rank)),
    h("td", {}, row.symbol, row.inTop ? h("span", { class: "badge", title: "in the screen's top N" }, " top") : null),
    h("td", { class: "num", "data-col": "score" }, row.score.toFixed(4)),
    ...metrics.map((m) => metricCell(row, m)),
    h("td", {}, row.asOfNs === 0n ? "–" : clockTime(row.asOfNs)),
  );
}

export class ScreenerPage {
  readonly root: HTMLElement;
  private readonly listStatus: HTMLElement;
  private readonly resultsStatus: HTMLElement;
  private readonly list = h("ul", { id: "screens-list", class: "screens" });
  private readonly definition = h("dl", { id: "screen-definition", class: "definition" });
  private readonly computed = h("p", { id: "screen-computed" });
  private readonly counts = h("p", { id: "screen-counts", class: "who" });
  private readonly head = h("tr", {});
  private readonly body = h("tbody", { id: "screen-rows" });
  private screens: ScreenDefinition[] = [];
  private wanted: string | null = null; // the route's screen (null: the first)
  private following: string | null = null; // the screen whose results stream now
  private result: ScreenResult | undefined;
  private sortKey: SortKey = "rank";
  private descending = false;
  private stream: AbortController | null = null;

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    const screens = panel("Screens", "screens", this.list, this.definition);
    this.listStatus = screens.status;
    const results = panel(
      "Latest result",
      "screen-results",
      this.computed,
      this.counts,
      h("div", { class: "scroll" }, h("table", { id: "screen-results-table" }, h("thead", {}, this.head), this.body)),
    );
    this.resultsStatus = results.status;
    this.root = h("main", { id: "screener-page", class: "page screener", hidden: true }, screens.root, results.root);
    this.draw();
  }

  /** Shows `screen` (the first by name when null), following the screens while shown. */
  show(screen: string | null): void {
    this.wanted = screen;
    const signal = this.loops.start();
    if (signal !== null) {
      void poll(this.loops.context(signal, this.listStatus), SCREENS_POLL_MS, async () => {
        const reply = await this.clients.screener.listScreens({}, unary(signal));
        if (signal.aborted) return;
        this.screens = reply.screens;
        this.choose();
      });
    }
    this.choose();
  }

  /** Stops following (another page is shown). */
  hide(): void {
    this.loops.stop();
    this.stream = null;
    this.following = null;
  }

  /** The screen shown: the route's, else the first; its results followed from now on. */
  private choose(): void {
    const name = this.wanted ?? this.screens[0]?.name ?? null;
    const parent = this.loops.signal;
    if (parent !== undefined && name !== this.following && this.screens.some((s) => s.name === name)) {
      this.stream?.abort();
      this.following = name;
      this.result = undefined;
      this.stream = childController(parent);
      const signal = this.stream.signal;
      const request = { screens: [name as string] };
      void follow(
        this.loops.context(signal, this.resultsStatus),
        (sub, opened) => this.live.subscribe(Screener.method.streamResults, request, { signal: sub, onAdded: opened }),
        (message) => {
          if (message.result?.screen !== name) return;
          this.result = message.result;
          this.drawResult();
        },
      );
    }
    this.draw();
  }

  private sortBy(key: SortKey): void {
    if (this.sortKey === key) this.descending = !this.descending;
    else [this.sortKey, this.descending] = [key, false];
    this.drawResult();
  }

  private draw(): void {
    const shown = this.following;
    const items = this.screens.map((s) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            href: screenerHash(s.name),
            "data-screen": s.name,
            "aria-current": s.name === shown ? "page" : undefined,
          },
          s.name,
        ),
        h("span", { class: "who" }, ` ${s.venue}, top ${s.top}, ${cadenceText(s.cadenceS)}`),
      ),
    );
    fill(this.list, ...(items.length ? items : [h("li", { class: "empty" }, "waiting for the Screener's screens")]));
    const screen = this.screens.find((s) => s.name === shown);
    this.definition.dataset.screen = screen?.name ?? "";
    if (screen === undefined) {
      fill(this.definition);
    } else {
      const rows = definitionRows(screen).flatMap(([title, key, text]) => [
        h("dt", {}, title),
        h("dd", { "data-key": key }, text),
      ]);
      const about = screen.description ? ` — ${screen.description}` : "";
      fill(this.definition, h("dt", {}, "screen"), h("dd", { "data-key": "name" }, screen.name, about), ...rows);
    }
    this.drawResult();
  }

  /** What the results panel says before a result: the screen not evaluated yet, or not there. */
  private waitingText(): string {
    if (this.following !== null) return `${this.following}: not evaluated yet`;
    if (this.wanted !== null && this.screens.length > 0) {
      return `no screen ${this.wanted} (the Screener runs ${this.screens.map((s) => s.name).join(", ")})`;
    }
    return "";
  }

  private drawHead(metrics: readonly string[]): void {
    const columns: [string, SortKey | null][] = [
      ["rank", "rank"],
      ["symbol", "symbol"],
      ["score", "score"],
      ...metrics.map((m): [string, SortKey] => [m, m]),
      ["as of", null],
    ];
    const cells = columns.map(([title, key]) => {
      if (key === null) return h("th", { title: "the event time of its oldest input used" }, title);
      const current = key === this.sortKey;
      const order = current ? (this.descending ? "descending" : "ascending") : "none";
      const arrow = current ? (this.descending ? " ↓" : " ↑") : "";
      const button = h("button", { type: "button", class: "sort", "data-sort": key }, title + arrow);
      button.addEventListener("click", () => this.sortBy(key));
      return h("th", { "aria-sort": order }, button);
    });
    fill(this.head, ...cells);
  }

  private drawResult(): void {
    const result = this.result;
    const metrics = metricColumns(result);
    if (!["rank", "symbol", "score", ...metrics].includes(this.sortKey)) {
      [this.sortKey, this.descending] = ["rank", false]; // that metric is gone (another screen)
    }
    this.drawHead(metrics);
    this.computed.dataset.computedNs = result === undefined ? "" : String(result.computedNs);
    this.body.dataset.screen = result?.screen ?? "";
    if (result === undefined) {
      this.computed.textContent = this.waitingText();
      fill(this.counts);
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: 4 + metrics.length }, "no result yet")));
      return;
    }
    this.computed.textContent = `${result.screen} on ${result.venue}: evaluated at ${clockTime(result.computedNs)}`;
    const missing = Object.entries(result.missing)
      .filter(([, count]) => count > 0)
      .map(([metric, count]) => `${metric} ${count}`)
      .join(", ");
    this.counts.textContent =
      `${result.universe} in the universe: ${result.ranked.length} ranked, ${result.leftOut} left out` +
      `${missing ? ` (missing ${missing}; ${result.stale} stale)` : ""}, ${result.filteredOut} filtered out; ` +
      `top ${result.topN}`;
    const rows = sortRows(rowsOf(result), this.sortKey, this.descending);
    fill(
      this.body,
      ...(rows.length
        ? rows.map((row) => resultRow(row, metrics))
        : [h("tr", { class: "empty" }, h("td", { colspan: 4 + metrics.length }, "nothing ranked"))]),
    );
  }
}
