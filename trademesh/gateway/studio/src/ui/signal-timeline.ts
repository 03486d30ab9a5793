// The selected patch's signal timeline: a row per rule, a mark at each signal time where the rule
// fired (its value on hover), over the span of the signals listed (ListSignals, newest first);
// and the newest signals in a list. A mark or a listed signal opens its trace (ledger/trace).
import { Direction, type Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { traceButton } from "../ledger/trace";
import { clockTime, label } from "../lib/format";
import { fill, h, throttled } from "./dom";

// The newest signals listed under the timeline.
const LISTED = 8;

/** The rules' names, in the order the newest signal lists them, then any older ones. */
function ruleNames(signals: readonly Signal[]): string[] {
  const names: string[] = [];
  for (const signal of signals) for (const rule of signal.rules) if (!names.includes(rule.name)) names.push(rule.name);
  return names;
}

/** The newest signals (the list is newest first), each with its trace. */
function recent(signals: readonly Signal[]): HTMLElement {
  return h(
    "ul",
    { id: "recent-signals", class: "recent-signals" },
    ...signals.slice(0, LISTED).map((signal) =>
      h(
        "li",
        { "data-signal-id": signal.signalId },
        h("span", { class: "who" }, clockTime(signal.tsSignalNs)),
        h("span", {}, `${label(Direction, signal.direction)} ${signal.conviction}`),
        h("span", { class: "code" }, signal.signalId),
        traceButton(signal.signalId, "this signal"),
      ),
    ),
  );
}

export class SignalTimeline {
  readonly root = h("div", { id: "signal-timeline", class: "timeline" });
  private signals: readonly Signal[] = [];
  private drawn: string | null = null; // the signal ids drawn
  // Drawn again only when the list changed, and not under a pressed pointer (ui/press): a mark or
  // a trace button re-made by the poll between a press and its release lost the click.
  private readonly redraw = throttled(() => this.draw());

  show(signals: readonly Signal[]): void {
    this.signals = signals;
    this.redraw();
  }

  private draw(): void {
    const signals = this.signals;
    const ids = signals.map((s) => s.signalId).join();
    if (ids === this.drawn) return;
    this.drawn = ids;
    if (signals.length === 0) {
      fill(this.root, h("p", { class: "empty" }, "no signals yet"));
      this.root.dataset.signals = "0";
      return;
    }
    const times = signals.map((s) => s.tsSignalNs);
    const start = times.reduce((a, b) => (a < b ? a : b));
    const end = times.reduce((a, b) => (a > b ? a : b));
    const span = Number(end - start) || 1;
    const at = (ts: bigint): string => `${signals.length === 1 ? 50 : (Number(ts - start) / span) * 100}%`;
    const rows = ruleNames(signals).map((name) => {
      const marks = signals.flatMap((signal) => {
        const rule = signal.rules.find((r) => r.name === name);
        if (rule === undefined || !rule.fired) return [];
        const title = `${clockTime(signal.tsSignalNs)} · ${name} = ${rule.value || "–"} (weight ${rule.weight})`;
        const ts = signal.tsSignalNs;
        const mark = { class: "fire", style: `left: ${at(ts)}`, title, "data-ts": String(ts) };
        return [h("span", { ...mark, "data-trace-id": signal.signalId })];
      });
      return h(
        "div",
        { class: "rule-row", "data-rule": name, "data-fired": marks.length },
        h("span", { class: "rule-name" }, name),
        h("div", { class: "track" }, ...marks),
      );
    });
    const axis = h(
      "div",
      { class: "axis" },
      h("span", {}, clockTime(start)),
      h("span", {}, `${signals.length} signal${signals.length === 1 ? "" : "s"}`),
      h("span", {}, clockTime(end)),
    );
    fill(this.root, ...rows, axis, recent(signals));
    this.root.dataset.signals = String(signals.length);
  }
}
