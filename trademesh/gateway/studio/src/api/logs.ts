// LogHub's Tail (trademesh.logs.v1.Logs, served by the gateway itself from the bus's `logs`
// stream) as the Logs page calls it: a subscription on the tab's Mux stream, like every live
// panel's. With follow it stays open, each message a batch of new matching lines; without, it
// ends after the backlog.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Logs, type TailRequestSchema, type TailResponse } from "../gen/trademesh/logs/v1/logs_pb";
import type { LiveStreams } from "./live";

export type TailInit = MessageInitShape<typeof TailRequestSchema>;

/** The matching lines, oldest first in each batch; `opened` once the subscription is live. */
export function tailLogs(
  live: LiveStreams,
  request: TailInit,
  signal: AbortSignal,
  opened: () => void,
): AsyncIterable<TailResponse> {
  return live.subscribe(Logs.method.tail, request, { signal, onAdded: opened });
}
