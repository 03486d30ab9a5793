// Which steps of a trace (Ledger.Trace) are a liquidation's: the venue's order closing a position
// by liquidation, its fills, and the transfers booking them (the liquidation fee among them). The
// ledger's trace says so in the steps' fields: an order's client order id is the venue's
// "liq-..." (Order.liquidation's), a field `liquidation` true where it gives one (as
// Fill.liquidation), a transfer's code LIQUIDATION_FEE (16: trademesh/core/ledger/engine/chart.py) or a
// kind or code naming liquidation; a liquidation order's fills (their order_id) and those fills'
// transfers (their fill_id) are the liquidation's too. A risk check's words about the distance
// to liquidation are not one.
import type { TraceStep } from "../gen/trademesh/ledger/v1/ledger_pb";

/** The steps a liquidation can be: the order, its fills, their transfers. */
const EXECUTION_KINDS = new Set(["order", "fill", "transfer"]);
const TRUE = new Set(["true", "1", "yes"]);
/** Fields naming what a transfer books (e.g. a code "liquidation_fee"). */
const WHAT_FIELDS = new Set(["kind", "code", "code_name", "reason", "transfer_kind"]);
/** The ledger's transfer code of a liquidation fill's fee (TransferCode.LIQUIDATION_FEE). */
export const LIQUIDATION_FEE_CODE = "16";
/** The venue's client order id of a liquidation order. */
const LIQUIDATION_ID = /^liq-/i;

function field(step: TraceStep, name: string): string {
  return step.fields.find((f) => f.name.toLowerCase() === name)?.value.trim() ?? "";
}

/** True when the step itself says it is a liquidation's. */
export function isLiquidationStep(step: TraceStep): boolean {
  if (!EXECUTION_KINDS.has(step.kind)) return false;
  return step.fields.some((f) => {
    const name = f.name.toLowerCase();
    const value = f.value.trim().toLowerCase();
    if (name === "liquidation") return TRUE.has(value);
    if (name === "client_order_id") return step.kind === "order" && LIQUIDATION_ID.test(value);
    if (name === "code" && step.kind === "transfer" && value === LIQUIDATION_FEE_CODE) return true;
    return WHAT_FIELDS.has(name) && value.includes("liquidation");
  });
}

/** The ids of a trace's liquidation steps: those that say so, a liquidation order's fills, and
 * a liquidation fill's transfers. */
export function liquidationSteps(steps: readonly TraceStep[]): Set<string> {
  const found = new Set(steps.filter(isLiquidationStep).map((s) => s.id));
  const orders = new Set(steps.filter((s) => s.kind === "order" && found.has(s.id)).map((s) => s.id));
  for (const s of steps) if (s.kind === "fill" && orders.has(field(s, "order_id"))) found.add(s.id);
  const fills = new Set(steps.filter((s) => s.kind === "fill" && found.has(s.id)).map((s) => s.id));
  for (const s of steps) if (s.kind === "transfer" && fills.has(field(s, "fill_id"))) found.add(s.id);
  return found;
}
