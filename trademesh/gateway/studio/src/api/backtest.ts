// The backtest hub's calls Studio makes through the gateway (trademesh.backtest.v1.Backtest; one
// instance, registered as `backtester`, so no target header): the strategies it can run, a run
// started and cancelled, its progress as it goes (WatchProgress, a subscription on the tab's Mux
// stream), the runs, newest first, and a finished run's results.
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Backtest,
  type BacktestOptionsSchema,
  type GetResultResponse,
  type RunSummary,
  type StrategyInfo,
  type WatchProgressResponse,
} from "../gen/trademesh/backtest/v1/backtest_pb";
import { type Clients, unary } from "./clients";
import type { LiveStreams } from "./live";

// The runs listed (the service's page is 1 to 500).
const RUNS = 100;
// A start builds the run before it answers (its options checked as the run would: strategies,
// the advisor's model): a second or two, longer on a busy machine than a unary call's 10 s.
const START_TIMEOUT_MS = 60_000;

export type OptionsDraft = MessageInitShape<typeof BacktestOptionsSchema>;

export async function strategies(clients: Clients, signal: AbortSignal): Promise<StrategyInfo[]> {
  const reply = await clients.backtest.listStrategies({}, unary(signal));
  return reply.strategies;
}

/** Starts a run of `options`; its id (the same options, the same id: it replaces the run). */
export async function startBacktest(clients: Clients, options: OptionsDraft, signal: AbortSignal): Promise<string> {
  const reply = await clients.backtest.startBacktest({ options }, { ...unary(signal), timeoutMs: START_TIMEOUT_MS });
  return reply.runId;
}

/** False when the run had ended already. */
export async function cancelBacktest(clients: Clients, runId: string, signal: AbortSignal): Promise<boolean> {
  const reply = await clients.backtest.cancelBacktest({ runId }, unary(signal));
  return reply.cancelled;
}

/** The runs, newest first. */
export async function runs(clients: Clients, signal: AbortSignal): Promise<RunSummary[]> {
  const reply = await clients.backtest.listRuns({ limit: RUNS }, unary(signal));
  return reply.runs;
}

export async function result(clients: Clients, runId: string, signal: AbortSignal): Promise<GetResultResponse> {
  return clients.backtest.getResult({ runId }, unary(signal));
}

/** A run's progress until it ends; `opened` once the subscription is live. */
export function watchProgress(
  live: LiveStreams,
  runId: string,
  signal: AbortSignal,
  opened: () => void,
): AsyncIterable<WatchProgressResponse> {
  return live.subscribe(Backtest.method.watchProgress, { runId }, { signal, onAdded: opened });
}
