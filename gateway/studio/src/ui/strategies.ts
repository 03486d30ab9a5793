// The Strategies page: every patch of the detector with its status (state, version,
// evaluations/s, warm, last signal), live from StreamStrategyStatus on the tab's Mux stream, the
// list itself from ListPatches (polled); a row opens its patch view below. Its loops run while
// the page is shown.
import { type Clients, DETECTOR, unary } from "../api/clients";
import type { LiveStreams } from "../api/live";
import {
  type ModuleType,
  Patch,
  type PatchSummary,
  PatchState,
  type StrategyStatus,
} from "../gen/trademesh/patch/v1/patch_pb";
import { Direction, type Signal } from "../gen/trademesh/signal/v1/signal_pb";
import type { Connection } from "../lib/connection";
import { clockTime, label, rate } from "../lib/format";
import { childController, follow, type LoopContext, poll } from "../lib/loop";
import { fill, h, panel, showStatus, table, throttled } from "./dom";
import { PatchView } from "./patch-view";

const LIST_POLL_MS = 5000;
const COLUMNS = ["patch", "strategy", "market", "state", "version", "evaluations/s", "warm", "last signal"];

/** The strategy of a patch made from a strategy file: "<strategy>/<venue>/<symbol>". */
function strategyOf(patch: PatchSummary, status: StrategyStatus | undefined): string {
  const fromSignal = status?.lastSignal?.strategyId;
  if (fromSignal) return fromSignal;
  const market = patch.markets[0];
  const suffix = market === undefined ? "" : `/${market.venue}/${market.symbol}`;
  return suffix !== "" && patch.patchId.endsWith(suffix) ? patch.patchId.slice(0, -suffix.length) : patch.patchId;
}

export function signalText(signal: Signal | undefined): string {
  if (signal === undefined) return "–";
  return `${label(Direction, signal.direction)} ${signal.conviction} at ${clockTime(signal.tsSignalNs)}`;
}

export class StrategiesPage {
  readonly root: HTMLElement;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body = h("tbody", { id: "patches" });
  private readonly view: PatchView;
  private readonly statuses = new Map<string, StrategyStatus>();
  private patches: PatchSummary[] = [];
  private selected: string | null = null;
  private controller: AbortController | null = null;
  private catalog: Promise<Map<string, ModuleType>> | null = null;
  private readonly redraw = throttled(() => this.draw());

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly appSignal: AbortSignal,
  ) {
    ({ root: this.list, status: this.status } = panel("Strategies", "strategies", table(COLUMNS, this.body)));
    this.view = new PatchView(clients, live, connection, () => this.loadCatalog());
    this.root = h("main", { id: "strategies-page", class: "page" }, this.list, this.view.root);
    this.draw();
  }

  /** Shows the page (with `patchId`'s view, or none) and runs its loops. */
  show(patchId: string | null): void {
    if (this.controller === null) {
      this.controller = childController(this.appSignal);
      this.start(this.controller.signal);
    }
    if (patchId !== this.selected || this.view.root.hidden !== (patchId === null)) {
      this.selected = patchId;
      this.view.open(patchId, this.controller.signal);
      this.redraw();
    }
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.controller?.abort();
    this.controller = null;
    this.view.close();
    this.selected = null;
  }

  private context(signal: AbortSignal): LoopContext {
    return { signal, connection: this.connection, onStatus: (status) => showStatus(this.status, status) };
  }

  private start(signal: AbortSignal): void {
    void poll(this.context(signal), LIST_POLL_MS, () => this.loadList(signal));
    void follow(
      this.context(signal),
      (signal, opened) =>
        this.live.subscribe(
          Patch.method.streamStrategyStatus,
          { patchIds: [] },
          { signal, onAdded: opened, target: DETECTOR },
        ),
      (message) => {
        for (const status of message.statuses) {
          this.statuses.set(status.patchId, status);
          this.view.update(status);
        }
        this.redraw();
      },
    );
  }

  private async loadList(signal: AbortSignal): Promise<void> {
    const reply = await this.clients.patch.listPatches({ states: [] }, unary(signal, DETECTOR));
    this.patches = reply.patches;
    this.redraw();
  }

  private loadCatalog(): Promise<Map<string, ModuleType>> {
    if (this.catalog === null) {
      const asked = this.clients.patch
        .getCatalog({}, unary(this.appSignal, DETECTOR))
        .then((reply) => new Map(reply.modules.map((m) => [m.type, m])));
      asked.catch(() => (this.catalog = null)); // asked again next time
      this.catalog = asked;
    }
    return this.catalog;
  }

  private row(patch: PatchSummary): HTMLElement {
    const status = this.statuses.get(patch.patchId);
    const state = label(PatchState, status?.state ?? patch.state);
    const market = patch.markets.map((m) => `${m.venue} ${m.symbol}`).join(", ");
    const href = `#/strategies/${encodeURIComponent(patch.patchId)}`;
    const warm = status === undefined ? "–" : status.warm ? "yes" : "no";
    return h(
      "tr",
      {
        "data-patch-id": patch.patchId,
        "data-state": state,
        "aria-selected": String(patch.patchId === this.selected),
      },
      h("td", {}, h("a", { href }, patch.patchId)),
      h("td", { "data-col": "strategy" }, strategyOf(patch, status)),
      h("td", { "data-col": "market" }, market),
      h("td", { "data-col": "state", class: `state state-${state}` }, state),
      h("td", { "data-col": "version", class: "num" }, String(status?.version ?? patch.version)),
      h("td", { "data-col": "rate", class: "num" }, status === undefined ? "–" : rate(status.evaluationsPerS)),
      h("td", { "data-col": "warm" }, warm),
      h("td", { "data-col": "signal" }, signalText(status?.lastSignal)),
    );
  }

  private draw(): void {
    if (this.patches.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no patches")));
    } else fill(this.body, ...this.patches.map((patch) => this.row(patch)));
  }
}
