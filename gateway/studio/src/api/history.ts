// What history the recorder holds (trademesh.history.v1.History, served by the gateway itself
// from PostgreSQL): per venue, symbol and timeframe, the range of bars held and its holes.
import type { Coverage } from "../gen/trademesh/history/v1/history_pb";
import { type Clients, unary } from "./clients";

/** Every series held, ordered by venue, symbol and timeframe (shortest first). */
export async function coverage(clients: Clients, signal: AbortSignal): Promise<Coverage[]> {
  const reply = await clients.history.getCoverage({}, unary(signal));
  return reply.series;
}
