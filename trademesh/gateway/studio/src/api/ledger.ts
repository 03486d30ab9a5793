// The ledger's calls Studio makes through the gateway (trademesh.ledger.v1.Ledger; one instance,
// registered as `ledger`, so no target header): balances, PnL per strategy with the equity
// curves, the newest transfers and the live ones (WatchTransfers, a subscription on the tab's
// Mux stream), the books' self-check, and the trace of any id of the trading chain. All reads.
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type Balance,
  type GetBalancesRequestSchema,
  type GetPnlResponse,
  Ledger,
  type TraceResponse,
  type Transfer,
  type VerifyResponse,
  type WatchTransfersResponse,
} from "../gen/trademesh/ledger/v1/ledger_pb";
import { type Clients, unary } from "./clients";
import type { LiveStreams } from "./live";

// The newest transfers the live list starts from (the service's page is at most 1000).
const HISTORY = 200;

export type BalanceFilter = MessageInitShape<typeof GetBalancesRequestSchema>;

/** The transfers of one venue and one strategy ("": every one). */
export interface TransferFilter {
  venue: string;
  strategyId: string;
}

export async function balances(clients: Clients, filter: BalanceFilter, signal: AbortSignal): Promise<Balance[]> {
  const reply = await clients.ledger.getBalances(filter, unary(signal));
  return reply.balances;
}

/** PnL of every strategy and in total, over the whole history, with the equity curves. */
export async function pnl(clients: Clients, signal: AbortSignal): Promise<GetPnlResponse> {
  return clients.ledger.getPnl({}, unary(signal));
}

/** The newest transfers, newest first. */
export async function recentTransfers(
  clients: Clients,
  filter: TransferFilter,
  signal: AbortSignal,
): Promise<Transfer[]> {
  const reply = await clients.ledger.listTransfers({ ...filter, pageSize: HISTORY, newestFirst: true }, unary(signal));
  return reply.transfers;
}

/** Transfers as the ledger posts them, in batches; `opened` once the subscription is live. */
export function watchTransfers(
  live: LiveStreams,
  filter: TransferFilter,
  signal: AbortSignal,
  opened: () => void,
): AsyncIterable<WatchTransfersResponse> {
  return live.subscribe(Ledger.method.watchTransfers, filter, { signal, onAdded: opened });
}

export async function verify(clients: Clients, signal: AbortSignal): Promise<VerifyResponse> {
  return clients.ledger.verify({}, unary(signal));
}

/** The chain of `id` (a signal, decision, intent, order, client order, fill or transfer id). */
export async function trace(clients: Clients, id: string, signal: AbortSignal): Promise<TraceResponse> {
  return clients.ledger.trace({ id }, unary(signal));
}
