// What the services board says, as plain data: each instance's health as a word, its uptime, and
// the mesh's summary (how many instances in each health, which are not serving, the alerts firing).
// The Services page draws every row; the Overview page draws the summary beside the regimes.
import { Kind } from "../gen/trademesh/registry/v1/registry_pb";
import { Health, type ServiceStatus, type Snapshot } from "../gen/trademesh/services/v1/services_pb";
import { label } from "../lib/format";

/** An uptime: "42 s", "3 min", "5.2 h", "2.1 d". */
export function uptime(ns: bigint): string {
  const s = Number(ns / 1_000_000_000n);
  if (s < 0) return "–";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/** An instance's health as words: "serving", "not serving", "unknown", "unreachable". */
export function healthWord(status: ServiceStatus): string {
  return label(Health, status.health).replace(/^health /, "");
}

/** An instance's kind as a word: "venue", "core", "gateway". */
export function kindWord(status: ServiceStatus): string {
  return label(Kind, status.kind).replace(/^kind /, "");
}

export interface HealthSummary {
  /** Instances on the board. */
  total: number;
  /** Instances per health word, in the order first met. */
  byHealth: Map<string, number>;
  /** "name (health)" of every instance not serving, in the board's order. */
  notServing: string[];
  /** Alerts firing: on instances and mesh-wide. */
  alerts: number;
}

/** The mesh at a glance, from one snapshot of the services board. */
export function healthSummary(snapshot: Snapshot): HealthSummary {
  const byHealth = new Map<string, number>();
  const notServing: string[] = [];
  let alerts = snapshot.meshAlerts.length;
  for (const status of snapshot.services) {
    const health = healthWord(status);
    byHealth.set(health, (byHealth.get(health) ?? 0) + 1);
    if (status.health !== Health.SERVING) notServing.push(`${status.name} (${health})`);
    alerts += status.alerts.length;
  }
  return { total: snapshot.services.length, byHealth, notServing, alerts };
}

/** "7 instances: 6 serving, 1 unreachable" */
export function summaryText(summary: HealthSummary): string {
  const parts = [...summary.byHealth].map(([health, count]) => `${count} ${health}`);
  const noun = summary.total === 1 ? "instance" : "instances";
  return parts.length === 0 ? `0 ${noun}` : `${summary.total} ${noun}: ${parts.join(", ")}`;
}
