// The calibration panel of the advisor page: the calibration in use (GetCalibration, polled
// rarely: it changes only when the advisor is given another), a regime picker, and the chosen
// regime's method, held-out Brier score and ECE before and after, and reliability diagram. The
// page points it at the selected decision's regime (its own calibrator, else the fallback).
import type { Clients } from "../api/clients";
import { getCalibration } from "../api/advisor";
import { CalibrationMethod, type Calibration, type RegimeCalibration } from "../gen/trademesh/advisor/v1/messages_pb";
import type { Connection } from "../lib/connection";
import { label, statistic } from "../lib/format";
import { poll } from "../lib/loop";
import { fill, h, panel, showStatus } from "./dom";
import { reliabilityDiagram } from "./reliability";

const POLL_MS = 60_000;
const FALLBACK = "fallback";

export class CalibrationPanel {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly select = h("select", { id: "regime-select", "aria-label": "regime" });
  private readonly stats = h("p", { id: "calibration-stats", class: "stats" });
  private readonly diagram = h("div", { id: "reliability", class: "diagram" });
  private calibration: Calibration | null = null;
  private regime: string | null = null;

  constructor(
    private readonly clients: Clients,
    private readonly connection: Connection,
  ) {
    const controls = h("div", { class: "controls" }, h("label", {}, "regime ", this.select));
    const parts = [controls, this.stats, this.diagram];
    ({ root: this.root, status: this.status } = panel("Calibration", "calibration", ...parts));
    this.select.addEventListener("change", () => this.show(this.select.value));
    this.draw();
  }

  /** Loads the calibration until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    const ctx = { signal, connection: this.connection, onStatus: this.onStatus };
    return poll(ctx, POLL_MS, async () => {
      const calibration = await getCalibration(this.clients, signal);
      if (signal.aborted) return;
      this.calibration = calibration;
      this.draw();
    });
  }

  /** Shows `regime`'s calibration: its own when it has one, else the fallback's. */
  show(regime: string): void {
    this.regime = regime;
    this.draw();
  }

  private readonly onStatus = (status: { tone: string; text: string }): void => showStatus(this.status, status);

  private chosen(regimes: readonly RegimeCalibration[]): RegimeCalibration | undefined {
    const byName = (name: string | null): RegimeCalibration | undefined => regimes.find((r) => r.regime === name);
    return byName(this.regime) ?? byName(FALLBACK) ?? regimes[0];
  }

  private draw(): void {
    const regimes = this.calibration?.regimes ?? [];
    const shown = this.chosen(regimes);
    const names = regimes.map((r) => r.regime);
    if ([...this.select.options].map((o) => o.value).join() !== names.join()) {
      fill(this.select, ...regimes.map((r) => h("option", { value: r.regime }, `${r.regime} (${r.samples})`)));
    }
    this.select.disabled = regimes.length === 0;
    if (shown === undefined) {
      fill(this.stats, this.calibration === null ? "loading…" : "no calibration");
      fill(this.diagram);
      return;
    }
    this.select.value = shown.regime;
    this.root.dataset.regime = shown.regime;
    this.root.dataset.version = this.calibration?.version ?? "";
    fill(
      this.stats,
      h("span", { "data-stat": "method" }, label(CalibrationMethod, shown.method)),
      h("span", { "data-stat": "brier" }, `Brier ${statistic(shown.brierBefore)} → ${statistic(shown.brierAfter)}`),
      h("span", { "data-stat": "ece" }, `ECE ${statistic(shown.eceBefore)} → ${statistic(shown.eceAfter)}`),
      h("span", { "data-stat": "version", class: "who" }, this.calibration?.version ?? ""),
    );
    fill(this.diagram, reliabilityDiagram(shown));
  }
}
