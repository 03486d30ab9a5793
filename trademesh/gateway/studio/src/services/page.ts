// The Services page (`#/services`): every instance registered with the gateway (venues, core
// services, the gateway itself) with its health, version, uptime and key figures (events/s, bus
// lag, errors/s), and the alerts firing on it, from the gateway's services board
// (trademesh.services.v1.Services/Watch, docs/operations.md "The services board"). Followed
// while shown; a stream that ends or fails is subscribed again.
import type { Clients } from "../api/clients";
import type { Alert, Figure, ServiceStatus, Snapshot } from "../gen/trademesh/services/v1/services_pb";
import { rate } from "../lib/format";
import { follow } from "../lib/loop";
import { fill, h, panel, table } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import { healthSummary, healthWord, kindWord, summaryText, uptime } from "./model";

const WATCH_INTERVAL_MS = 2000;
const COLUMNS = [
  "service",
  "kind",
  "instance",
  "address",
  "version",
  "health",
  "uptime",
  "events/s",
  "bus lag",
  "errors/s",
  "alerts",
];

/** A figure's cell: its value, or "–" with why it is absent as the cell's title. */
function figureCell(figure: Figure | undefined, format: (value: number) => string, name: string): HTMLElement {
  if (figure === undefined || !figure.present) {
    return h("td", { class: "num absent", "data-figure": name, title: figure?.why ?? "" }, "–");
  }
  return h("td", { class: "num", "data-figure": name, "data-value": String(figure.value) }, format(figure.value));
}

export function alertBadge(alert: Alert): HTMLElement {
  const severity = alert.severity || "none";
  return h("span", { class: `badge alert severity-${severity}`, title: alert.summary }, alert.name);
}

function row(status: ServiceStatus, takenAtNs: bigint): HTMLElement {
  const health = healthWord(status);
  return h(
    "tr",
    { "data-service": status.name, "data-instance": status.instanceId, "data-health": health },
    h("td", {}, status.name),
    h("td", {}, kindWord(status)),
    h("td", { class: "mono", title: status.instanceId }, status.instanceId.slice(0, 8)),
    h("td", { class: "mono" }, status.address),
    h("td", { class: "version" }, status.version || "–"),
    h("td", {}, h("span", { class: `badge health-${health.replaceAll(" ", "-")}`, title: status.healthDetail }, health)),
    h("td", { class: "num" }, takenAtNs === 0n ? "–" : uptime(takenAtNs - status.registeredAtNs)),
    figureCell(status.eventsPerS, rate, "events"),
    figureCell(status.busLag, (v) => v.toFixed(0), "lag"),
    figureCell(status.errorsPerS, rate, "errors"),
    h("td", { class: "alerts" }, ...status.alerts.map(alertBadge)),
  );
}

export class ServicesPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body = h("tbody", { id: "services-rows" });
  private readonly meshAlerts = h("div", { id: "services-mesh-alerts", class: "alerts" });
  private readonly alertsNote = h("p", { id: "services-alerts-note", class: "who" });
  private readonly summary = h("p", { id: "services-summary", class: "who" });

  constructor(
    private readonly clients: Clients,
    private readonly loops: PageLoops,
  ) {
    const board = panel(
      "Services",
      "services",
      this.summary,
      h("div", { class: "scroll" }, table(COLUMNS, this.body)),
      h("h3", {}, "Mesh-wide alerts"),
      this.meshAlerts,
      this.alertsNote,
    );
    this.status = board.status;
    this.root = h("main", { id: "services-page", hidden: true }, board.root);
  }

  /** Follows the board while the page is shown. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    void follow(
      this.loops.context(signal, this.status),
      (signal) => this.clients.services.watch({ intervalMs: WATCH_INTERVAL_MS }, { signal }),
      (reply) => {
        if (reply.snapshot !== undefined) this.draw(reply.snapshot);
      },
    );
  }

  /** Stops following (another page is shown). */
  hide(): void {
    this.loops.stop();
  }

  private draw(snapshot: Snapshot): void {
    fill(this.body, ...snapshot.services.map((s) => row(s, snapshot.takenAtNs)));
    this.summary.textContent = summaryText(healthSummary(snapshot));
    fill(this.meshAlerts, ...(snapshot.meshAlerts.length ? snapshot.meshAlerts.map(alertBadge) : ["none"]));
    this.root.dataset.takenAt = String(snapshot.takenAtNs);
    let note = "";
    if (!snapshot.alertsConfigured) note = "No Alertmanager configured (gateway --alertmanager-url).";
    else if (snapshot.alertsError !== "") note = `Alerts unavailable: ${snapshot.alertsError}`;
    this.alertsNote.textContent = note;
  }
}
