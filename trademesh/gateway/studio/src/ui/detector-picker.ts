// The detector picker: a select of the registered detector instances (api/detectors), polled
// for the session's life so the choice has a default on every page; choosing one tells
// `onPick` (the app puts it in the Strategies page's URL).
import type { Clients } from "../api/clients";
import { type DetectorChoice, listDetectors } from "../api/detectors";
import { type LoopContext, poll } from "../lib/loop";
import { fill, h } from "./dom";

const POLL_MS = 10_000;

export class DetectorPicker {
  readonly select = h("select", { id: "detector-picker", "aria-label": "detector" });
  readonly root = h("label", { class: "detector-picker" }, "detector ", this.select);

  constructor(
    private readonly clients: Clients,
    private readonly choice: DetectorChoice,
    onPick: (name: string) => void,
    signal: AbortSignal,
  ) {
    this.select.addEventListener("change", () => onPick(this.select.value));
    choice.onChange(() => this.draw(), signal);
    this.draw();
  }

  /** Lists the instances every few seconds until the context's signal aborts. */
  run(ctx: LoopContext): Promise<void> {
    return poll(ctx, POLL_MS, async () => {
      const names = await listDetectors(this.clients, ctx.signal);
      if (ctx.signal.aborted) return;
      this.choice.listed(names);
      this.draw();
    });
  }

  private draw(): void {
    const chosen = this.choice.name;
    const names = [...this.choice.names];
    if (chosen !== null && !names.includes(chosen)) names.push(chosen); // a URL's, not (yet) listed
    const shown = [...this.select.options].map((o) => o.value);
    if (shown.join() !== names.join()) {
      fill(this.select, ...names.map((name) => h("option", { value: name }, name)));
      if (names.length === 0) fill(this.select, h("option", { value: "" }, "no detector"));
    }
    this.select.value = chosen ?? "";
    this.select.disabled = names.length === 0;
    this.root.dataset.detectors = String(this.choice.names.length);
  }
}
