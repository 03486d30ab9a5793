// The inspector's calls Studio makes through the gateway (trademesh.risk.v1.Inspector; one
// instance, so no target header): a manual intent from the order ticket, cancels, the
// operator's modes, and what the Risk page shows (state, policies, positions, risk events, the
// live ones a subscription on the tab's Mux stream). The inspector alone places and cancels
// orders at a venue (docs/inspector.md).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { IntentSchema } from "../gen/trademesh/advisor/v1/messages_pb";
import {
  type GetPoliciesResponse,
  type GetRiskStateResponse,
  Inspector,
  type Mode,
  type PositionView,
  type RiskEvent,
  type SetModeResponse,
  type SubmitIntentResponse,
  type WatchRiskEventsResponse,
} from "../gen/trademesh/risk/v1/inspector_pb";
import type { Order } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { type Clients, unary } from "./clients";
import type { LiveStreams } from "./live";
import { traceHeaders } from "./trace";

// The newest risk events the timeline starts from (the service's page is at most 500).
const HISTORY = 200;

export type IntentDraft = MessageInitShape<typeof IntentSchema>;

/** A manual intent, checked like any other: the verdict, its reasons, the order when allowed;
 * sent in trace `traceId` (api/trace) when given, so its log lines can be found. */
export async function submitIntent(
  clients: Clients,
  intent: IntentDraft,
  signal: AbortSignal,
  traceId?: string,
): Promise<SubmitIntentResponse> {
  const options = unary(signal);
  if (traceId !== undefined) {
    options.headers = { ...(options.headers as Record<string, string>), ...traceHeaders(traceId) };
  }
  return clients.inspector.submitIntent({ intent }, options);
}

/** Cancels one of the inspector's orders at `venue`; the venue's answer (null when none came). */
export async function cancelOrder(
  clients: Clients,
  venue: string,
  clientOrderId: string,
  reason: string,
  signal: AbortSignal,
): Promise<Order | null> {
  const reply = await clients.inspector.cancelOrder({ venue, clientOrderId, reason }, unary(signal));
  return reply.order ?? null;
}

/** Cancels every order at `venue`; how many the venue cancelled. */
export async function cancelAllOrders(
  clients: Clients,
  venue: string,
  reason: string,
  signal: AbortSignal,
): Promise<number> {
  const reply = await clients.inspector.cancelAllOrders({ venue, reason }, unary(signal));
  return reply.cancelled;
}

export async function riskState(clients: Clients, signal: AbortSignal): Promise<GetRiskStateResponse> {
  return clients.inspector.getRiskState({}, unary(signal));
}

export async function policies(clients: Clients, signal: AbortSignal): Promise<GetPoliciesResponse> {
  return clients.inspector.getPolicies({}, unary(signal));
}

export async function positions(clients: Clients, signal: AbortSignal): Promise<PositionView[]> {
  const reply = await clients.inspector.listPositions({ venue: "" }, unary(signal));
  return reply.positions;
}

/** The newest recorded risk events, newest first. */
export async function recentRiskEvents(clients: Clients, signal: AbortSignal): Promise<RiskEvent[]> {
  const reply = await clients.inspector.listRiskEvents({ pageSize: HISTORY }, unary(signal));
  return reply.events;
}

/** Risk events and state transitions as they happen; `opened` once the subscription is live. */
export function watchRiskEvents(
  live: LiveStreams,
  signal: AbortSignal,
  opened: () => void,
): AsyncIterable<WatchRiskEventsResponse> {
  return live.subscribe(Inspector.method.watchRiskEvents, {}, { signal, onAdded: opened });
}

/** An operator's command (stand down, resume, close all); the reason is required. */
export async function setMode(
  clients: Clients,
  mode: Mode,
  reason: string,
  signal: AbortSignal,
): Promise<SetModeResponse> {
  return clients.inspector.setMode({ mode, reason }, unary(signal));
}
