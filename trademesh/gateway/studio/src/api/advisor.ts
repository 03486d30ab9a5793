// The advisor's calls Studio makes through the gateway (trademesh.advisor.v1.Advisor; one
// instance, registered as `advisor`, so no target header): the recorded decisions (the backlog),
// the live ones (WatchDecisions, a subscription on the tab's Mux stream: dry runs of Decide
// show there too), one decision by id, and the calibration in use.
import type { Calibration, Decision } from "../gen/trademesh/advisor/v1/messages_pb";
import { Advisor, type WatchDecisionsResponse } from "../gen/trademesh/advisor/v1/service_pb";
import { type Clients, unary } from "./clients";
import type { LiveStreams } from "./live";

// The newest recorded decisions the log starts from (the service's page is at most 500).
const BACKLOG = 100;

/** The newest recorded decisions, newest first. */
export async function recentDecisions(clients: Clients, signal: AbortSignal): Promise<Decision[]> {
  const reply = await clients.advisor.listDecisions({ pageSize: BACKLOG }, unary(signal));
  return reply.decisions;
}

/** Decisions as the advisor makes them, in batches; `opened` once the subscription is live. */
export function watchDecisions(
  live: LiveStreams,
  signal: AbortSignal,
  opened: () => void,
): AsyncIterable<WatchDecisionsResponse> {
  return live.subscribe(Advisor.method.watchDecisions, { withTelemetry: false }, { signal, onAdded: opened });
}

/** One decision by id (the advisor's memory, else the recorder's tables). */
export async function getDecision(clients: Clients, decisionId: string, signal: AbortSignal): Promise<Decision> {
  const reply = await clients.advisor.getDecision({ decisionId }, unary(signal));
  if (reply.decision === undefined) throw new Error(`the advisor answered no decision for ${decisionId}`);
  return reply.decision;
}

/** The calibration in use, every regime's. */
export async function getCalibration(clients: Clients, signal: AbortSignal): Promise<Calibration | null> {
  const reply = await clients.advisor.getCalibration({}, unary(signal));
  return reply.calibration ?? null;
}
