// Whether a step of the trace (Ledger.Trace) is part of a liquidation: the venue's order closing
// a position by liquidation, its fills, and the transfers booking them (the liquidation fee). The
// ledger's trace says so in a step's fields: `liquidation` true on the order and fill (as
// Order.liquidation and Fill.liquidation), or a kind or code naming liquidation on a transfer; a
// liquidation order's client order id is the venue's, "liq-...". A risk check's words about the
// distance to liquidation are not one.
import type { TraceStep } from "../gen/trademesh/ledger/v1/ledger_pb";

/** The steps a liquidation can be: the order, its fills, their transfers. */
const EXECUTION_KINDS = new Set(["order", "fill", "transfer"]);
const TRUE = new Set(["true", "1", "yes"]);
/** Fields naming what a transfer books (e.g. a kind or code "liquidation_fee"). */
const WHAT_FIELDS = new Set(["kind", "code", "code_name", "reason", "transfer_kind"]);
/** The venue's client order id of a liquidation order. */
const LIQUIDATION_ID = /^liq-/i;

export function isLiquidationStep(step: TraceStep): boolean {
  if (!EXECUTION_KINDS.has(step.kind)) return false;
  return step.fields.some((field) => {
    const name = field.name.toLowerCase();
    const value = field.value.trim().toLowerCase();
    if (name === "liquidation") return TRUE.has(value);
    if (name === "client_order_id") return LIQUIDATION_ID.test(value);
    return WHAT_FIELDS.has(name) && value.includes("liquidation");
  });
}
