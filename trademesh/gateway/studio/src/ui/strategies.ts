// The Strategies page: every patch of the chosen detector instance (the picker in its header,
// api/detectors) with its status (state, version, evaluations/s, warm, last signal), live from
// StreamStrategyStatus on the tab's Mux stream, the list itself from ListPatches (polled); a row
// opens its patch view below; "New draft patch" (ui/new-patch) makes an empty one there, for the
// patch view's editor to build. Its loops run while the page is shown, on the chosen instance:
// another choice starts them again on that one.
import { type Clients, unary } from "../api/clients";
import type { DetectorChoice } from "../api/detectors";
import type { LiveStreams } from "../api/live";
import {
  type ModuleType,
  Patch,
  type PatchSummary,
  PatchState,
  type StrategyStatus,
} from "../gen/trademesh/patch/v1/patch_pb";
import { Direction, type Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { clockTime, label, rate } from "../lib/format";
import { follow, poll } from "../lib/loop";
import { fill, h, panel, showStatus, table, throttled } from "./dom";
import { NewPatchForm } from "./new-patch";
import type { PageLoops } from "./page-loops";
import { strategiesHash } from "./pages";
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
  // The instance the loops run on (null: none registered yet).
  private detector: string | null = null;
  private catalog: Promise<Map<string, ModuleType>> | null = null;
  private readonly redraw = throttled(() => this.draw());

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
    private readonly choice: DetectorChoice,
    picker: HTMLElement,
  ) {
    const create = new NewPatchForm(clients, () => this.detector, loops.appSignal, (patchId) => {
      window.location.hash = strategiesHash(patchId, this.detector);
    });
    const controls = h("div", { class: "controls" }, picker, create.root);
    const tableView = table(COLUMNS, this.body);
    ({ root: this.list, status: this.status } = panel("Strategies", "strategies", controls, tableView));
    this.view = new PatchView(clients, live, loops.connection, () => this.loadCatalog());
    this.root = h("main", { id: "strategies-page", class: "page" }, this.list, this.view.root);
    choice.onChange(() => this.switched(), loops.appSignal);
    this.draw();
  }

  /** Shows the page of `detector` (null: the one chosen) with `patchId`'s view, or none, and
   * runs its loops. */
  show(patchId: string | null, detector: string | null): void {
    if (detector !== null) this.choice.set(detector);
    const target = this.choice.name;
    let signal = this.loops.signal;
    if (signal === undefined || target !== this.detector) signal = this.restart(target);
    const shown = target === null ? null : patchId;
    if (patchId !== this.selected || this.view.root.hidden !== (shown === null)) {
      this.selected = patchId;
      this.view.open(shown, target ?? "", signal);
      this.redraw();
    }
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.loops.stop();
    this.view.close();
    this.selected = null;
  }

  /** Another instance was chosen while the page is shown: its page, no patch open (a patch
   * asked for before any instance was known stays asked for). */
  private switched(): void {
    if (this.loops.signal === undefined || this.choice.name === this.detector) return;
    this.show(this.detector === null ? this.selected : null, null);
  }

  /** The loops of `target`'s page started afresh: their signal. */
  private restart(target: string | null): AbortSignal {
    const signal = this.loops.restart();
    this.view.close();
    this.detector = target;
    this.selected = null;
    this.patches = [];
    this.statuses.clear();
    this.catalog = null;
    this.root.dataset.detector = target ?? "";
    if (target === null) showStatus(this.status, { tone: "warn", text: "no detector registered yet" });
    else this.start(signal, target);
    this.redraw();
    return signal;
  }

  private start(signal: AbortSignal, detector: string): void {
    void poll(this.loops.context(signal, this.status), LIST_POLL_MS, () => this.loadList(signal, detector));
    void follow(
      this.loops.context(signal, this.status),
      (signal, opened) =>
        this.live.subscribe(
          Patch.method.streamStrategyStatus,
          { patchIds: [] },
          { signal, onAdded: opened, target: detector },
        ),
      (message) => {
        if (signal.aborted) return;
        for (const status of message.statuses) {
          this.statuses.set(status.patchId, status);
          this.view.update(status);
        }
        this.redraw();
      },
    );
  }

  private async loadList(signal: AbortSignal, detector: string): Promise<void> {
    const reply = await this.clients.patch.listPatches({ states: [] }, unary(signal, detector));
    if (signal.aborted) return;
    this.patches = reply.patches;
    this.redraw();
  }

  private loadCatalog(): Promise<Map<string, ModuleType>> {
    if (this.catalog === null) {
      const asked = this.clients.patch
        .getCatalog({}, unary(this.loops.appSignal, this.detector ?? ""))
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
    const href = strategiesHash(patch.patchId, this.detector);
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
