// One patch: its graph with live probe values on the cables (StreamProbes through the tab's Mux
// stream), its error when errored, the graph editor (ui/patch-editor: modules and cables, on a
// draft or paused patch), its parameters (SetParams), Activate and Pause, and the timeline of its
// signals' rules (ListSignals, polled). The strategies page hands it each status of the patch
// (StreamStrategyStatus); a version or state it has not drawn yet is fetched again.
import { type Clients, unary } from "../api/clients";
import { violations } from "../api/details";
import { classify } from "../api/errors";
import type { LiveStreams } from "../api/live";
import {
  type ModuleType,
  Patch,
  type PatchGraph,
  PatchState,
  type ParamValue,
  type StrategyStatus,
} from "../gen/trademesh/patch/v1/patch_pb";
import type { Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { label } from "../lib/format";
import type { Connection } from "../lib/connection";
import { childController, follow, type LoopContext, poll } from "../lib/loop";
import { fill, h, panel, showStatus } from "./dom";
import { PatchEditor } from "./patch-editor";
import { PatchGraphView } from "./patch-graph";
import { paramsForm } from "./patch-params";
import { SignalTimeline } from "./signal-timeline";

const SIGNALS_POLL_MS = 3000;
const SIGNALS_SHOWN = 200;
// Probe values change on every trade; 10 a second per cable is as fast as anyone reads them.
const PROBES_PER_S = 10;

export class PatchView {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly title = h("h3", { id: "patch-title" });
  private readonly state = h("span", { id: "patch-state", class: "badge" });
  private readonly version = h("span", { id: "patch-version", class: "who" });
  private readonly activate = h("button", { id: "patch-activate", type: "button", class: "buy" }, "Activate");
  private readonly pause = h("button", { id: "patch-pause", type: "button", class: "sell" }, "Pause");
  private readonly message = h("p", { id: "patch-message", class: "message", role: "status" });
  private readonly error = h("p", { id: "patch-error", class: "error", hidden: true });
  private readonly graph = new PatchGraphView();
  private readonly editor: PatchEditor;
  private readonly params = h("div", { class: "params-wrap" });
  private readonly timeline = new SignalTimeline();
  private controller: AbortController | null = null;
  private probesController: AbortController | null = null;
  private patch: PatchGraph | null = null;
  private shownCatalog: Map<string, ModuleType> | null = null;
  // What the graph was last drawn from: it is drawn again only when that changed.
  private graphKey = "";
  private cablesKey = "";
  private fetching = false;
  // The detector instance the patch is of (the strategies page's choice).
  private detector = "";
  // The patch's signals, shown once its graph and parameters are (drawn later above the
  // timeline, they moved it and its trace buttons down the page).
  private signals: readonly Signal[] = [];
  private drawnOnce = false;

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly catalog: () => Promise<Map<string, ModuleType>>,
  ) {
    this.editor = new PatchEditor(clients, {
      options: () => (this.controller === null ? null : unary(this.controller.signal, this.detector)),
      reload: () => this.reload(),
      redraw: () => this.drawGraph(),
    });
    // The buttons at the head's end: a state or version of another width never moves them.
    const actions = h("span", { class: "actions" }, this.activate, this.pause);
    const head = h("div", { class: "patch-head" }, this.title, this.state, this.version, actions);
    ({ root: this.root, status: this.status } = panel(
      "Patch",
      "patch-view",
      head,
      this.message,
      this.error,
      this.editor.root,
      this.graph.root,
      h("h3", {}, "Parameters"),
      this.params,
      h("h3", {}, "Signal timeline"),
      this.timeline.root,
    ));
    this.activate.addEventListener("click", () => void this.lifecycle("activate"));
    this.pause.addEventListener("click", () => void this.lifecycle("pause"));
    this.root.hidden = true;
  }

  /** Shows `patchId` of `detector` (or nothing, with null) until the next open or `parent` aborts. */
  open(patchId: string | null, detector: string, parent: AbortSignal): void {
    this.close();
    this.root.hidden = patchId === null;
    if (patchId === null) return;
    this.detector = detector;
    this.root.dataset.detector = detector;
    this.controller = childController(parent);
    const signal = this.controller.signal;
    this.root.dataset.patchId = patchId;
    this.title.textContent = patchId;
    // Until the patch is drawn a click would do nothing (no patch to act on): say so.
    this.activate.disabled = true;
    this.pause.disabled = true;
    this.say("", "");
    this.editor.reset();
    this.signals = [];
    this.drawnOnce = false;
    this.timeline.show([]);
    void poll(this.context(signal), 60_000, () => this.load(patchId, signal));
    void poll(this.context(signal), SIGNALS_POLL_MS, () => this.loadSignals(patchId, signal));
  }

  close(): void {
    this.controller?.abort();
    this.controller = null;
    this.probesController = null;
    this.patch = null;
    this.graphKey = "";
    this.cablesKey = "";
    this.graph.clearValues();
  }

  /** The patch's status from the strategies page's stream: redraws when it changed. */
  update(status: StrategyStatus): void {
    const patch = this.patch;
    if (patch === null || status.patchId !== patch.patchId || this.controller === null) return;
    if (status.version === patch.version && status.state === patch.state) return;
    const signal = this.controller.signal;
    if (this.fetching) return;
    this.fetching = true;
    void this.load(patch.patchId, signal)
      .catch((error: unknown) => this.say("error", classify(error).message))
      .finally(() => (this.fetching = false));
  }

  private context(signal: AbortSignal): LoopContext {
    return { signal, connection: this.connection, onStatus: (status) => showStatus(this.status, status) };
  }

  private async load(patchId: string, signal: AbortSignal): Promise<void> {
    const reply = await this.clients.patch.getPatch({ patchId }, unary(signal, this.detector));
    if (reply.patch !== undefined && !signal.aborted) await this.draw(reply.patch);
  }

  /** The open patch read again (after an edit: the graph shows what the detector holds). */
  private async reload(): Promise<void> {
    const patch = this.patch;
    if (patch === null || this.controller === null) return;
    await this.load(patch.patchId, this.controller.signal);
  }

  private async loadSignals(patchId: string, signal: AbortSignal): Promise<void> {
    const reply = await this.clients.patch.listSignals({ patchId, limit: SIGNALS_SHOWN }, unary(signal, this.detector));
    if (signal.aborted) return;
    this.signals = reply.signals;
    if (this.drawnOnce) this.timeline.show(this.signals);
  }

  private async draw(patch: PatchGraph): Promise<void> {
    const catalog = await this.catalog();
    const previous = this.patch;
    // A read that went out before a change and came back after it (a poll, a status's fetch):
    // drawn, it would take the patch back a version and rebuild the parameters under the user.
    if (previous?.patchId === patch.patchId && patch.version < previous.version) return;
    this.patch = patch;
    this.shownCatalog = catalog;
    const state = label(PatchState, patch.state);
    this.state.textContent = state;
    this.state.className = `badge state-${state}`;
    this.state.dataset.state = state;
    this.version.textContent = `version ${patch.version}`;
    this.version.dataset.version = String(patch.version);
    this.activate.disabled = patch.state === PatchState.ACTIVE || patch.state === PatchState.ARCHIVED;
    this.pause.disabled = patch.state !== PatchState.ACTIVE;
    this.error.hidden = patch.error === undefined || patch.state !== PatchState.ERRORED;
    this.error.textContent = patch.error === undefined ? "" : `${patch.error.moduleId}: ${patch.error.message}`;
    this.editor.show(patch, catalog);
    this.drawGraph();
    if (previous === null || previous.version !== patch.version || previous.patchId !== patch.patchId) {
      fill(this.params, paramsForm(patch, catalog, (moduleId, params) => this.setParams(moduleId, params)));
    }
    if (!this.drawnOnce) {
      this.drawnOnce = true;
      this.timeline.show(this.signals);
    }
    this.followProbes(patch);
  }

  /** Draws the graph of the patch, unless it is drawn already as it is (the 60 s poll, a status). */
  private drawGraph(): void {
    const patch = this.patch;
    if (patch === null) return;
    const error = patch.error === undefined ? "" : `${patch.error.moduleId}: ${patch.error.message}`;
    const key = [patch.patchId, patch.version, patch.state, error, this.editor.stamp].join("|");
    if (key === this.graphKey) return;
    this.graphKey = key;
    this.graph.draw(patch, { catalog: this.shownCatalog, editing: this.editor.editing(), notes: this.editor.notes });
  }

  /** (Re)subscribes to the patch's probes when its cables changed: every cable's source. */
  private followProbes(patch: PatchGraph): void {
    const key = patch.cables.map((c) => `${c.fromModule}.${c.fromPort}>${c.toModule}.${c.toPort}`).join();
    if (key === this.cablesKey && this.probesController !== null) return;
    this.cablesKey = key;
    this.probesController?.abort();
    if (this.controller === null) return;
    this.probesController = childController(this.controller.signal);
    this.graph.clearValues();
    const request = { patchId: patch.patchId, ports: [], maxUpdatesPerS: PROBES_PER_S };
    void follow(
      this.context(this.probesController.signal),
      (signal, opened) =>
        this.live.subscribe(Patch.method.streamProbes, request, { signal, onAdded: opened, target: this.detector }),
      (message) => {
        for (const update of message.updates) this.graph.probe(update);
      },
    );
  }

  private async setParams(moduleId: string, params: Record<string, ParamValue>): Promise<void> {
    const patch = this.patch;
    if (patch === null || this.controller === null) throw new Error("no patch is open");
    const request = { patchId: patch.patchId, moduleId, params };
    const reply = await this.clients.patch.setParams(request, unary(this.controller.signal, this.detector));
    if (reply.patch !== undefined) await this.draw(reply.patch);
  }

  private async lifecycle(action: "activate" | "pause"): Promise<void> {
    const patch = this.patch;
    if (patch === null || this.controller === null) return;
    const options = unary(this.controller.signal, this.detector);
    const button = action === "activate" ? this.activate : this.pause;
    button.disabled = true;
    this.editor.unpin();
    this.say("", action === "activate" ? "activating… (warming up when needed)" : "pausing…");
    try {
      const request = { patchId: patch.patchId };
      const reply =
        action === "activate"
          ? await this.clients.patch.activatePatch(request, options)
          : await this.clients.patch.pausePatch(request, options);
      if (reply.patch !== undefined) await this.draw(reply.patch);
      this.say("ok", action === "activate" ? "activated" : "paused");
    } catch (error) {
      const reasons = violations(error).map((v) => `${v.field}: ${v.description}`);
      this.say("error", [classify(error).message, ...reasons].join("; "));
      this.editor.showReasons(error);
      if (this.patch !== null) await this.draw(this.patch);
    }
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
