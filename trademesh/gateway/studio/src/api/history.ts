// What history the recorder holds (trademesh.history.v1.History, served by the gateway itself
// from PostgreSQL): per venue, symbol and timeframe, the range of bars held and its holes.
import type { Coverage } from "../gen/trademesh/history/v1/history_pb";
import { type Clients, unary } from "./clients";

/** The series held of `timeframe` (every one when ""), ordered by venue and symbol. Asking for
 * one timeframe reads only its bars (a 1m series, not the 1s bars beside it). */
export async function coverage(clients: Clients, timeframe: string, signal: AbortSignal): Promise<Coverage[]> {
  const reply = await clients.history.getCoverage({ timeframe }, unary(signal));
  return reply.series;
}
