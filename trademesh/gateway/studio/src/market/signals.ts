// The signals of one venue and symbol, for the chart's markers: the chosen detector instance's
// ListSignals for the symbol (newest first), polled. Polling, not a Mux subscription: a unary
// call every few seconds holds no connection between calls, the chart needs the history anyway
// (a subscription to StreamStrategyStatus would show only each patch's last signal, once a
// second), and the tab's live data stays on its one Mux stream. With no detector known yet,
// there are no markers.
import { type Clients, unary } from "../api/clients";
import type { Signal } from "../gen/trademesh/signal/v1/signal_pb";
import { type LoopContext, poll } from "../lib/loop";

const POLL_MS = 3000;
const SHOWN = 500;

export function runSignals(
  ctx: LoopContext,
  clients: Clients,
  detector: string | null,
  venue: string,
  symbol: string,
  show: (signals: Signal[]) => void,
): Promise<void> {
  return poll(ctx, POLL_MS, async () => {
    if (detector === null) return;
    const reply = await clients.patch.listSignals({ symbol, limit: SHOWN }, unary(ctx.signal, detector));
    if (!ctx.signal.aborted) show(reply.signals.filter((s) => s.venue === venue));
  });
}
