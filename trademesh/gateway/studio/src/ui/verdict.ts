// The inspector's verdict on an intent, as the order ticket shows it: ALLOW with the order the
// venue acknowledged, or BLOCK / THROTTLE with each reason (the policy, why, and the values it
// was decided on).
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { RiskAction, type RiskEvent, type SubmitIntentResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { type Order, OrderStatus } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { label } from "../lib/format";
import { h } from "./dom";
import { valuesText } from "./risk-timeline";

export interface VerdictText {
  tone: "ok" | "error";
  text: string;
}

function orderText(order: Order): string {
  const at = order.price === "" ? "market" : `@ ${order.price}`;
  const reason = order.statusReason === "" ? "" : ` (${order.statusReason})`;
  return `${label(Side, order.side)} ${order.size} ${order.symbol} ${at}: ${label(OrderStatus, order.status)}${reason}`;
}

/** The headline: "allow: buy 0.01 BTC/USDT @ market: filled", "block: 2 reasons". */
export function verdictText(reply: SubmitIntentResponse): VerdictText {
  const action = label(RiskAction, reply.action);
  if (reply.action !== RiskAction.ALLOW) {
    const count = reply.reasons.length;
    return { tone: "error", text: `${action}: ${count} reason${count === 1 ? "" : "s"}` };
  }
  if (reply.order === undefined || reply.order.orderId === "") {
    return { tone: "ok", text: `${action}: order ${reply.clientOrderId} sent, the venue's answer is pending` };
  }
  const rejected = reply.order.status === OrderStatus.REJECTED;
  return { tone: rejected ? "error" : "ok", text: `${action}: ${orderText(reply.order)}` };
}

/** One item per reason of a refusal (none for ALLOW). */
export function reasonItems(reply: SubmitIntentResponse): HTMLElement[] {
  if (reply.action === RiskAction.ALLOW) return [];
  return reply.reasons.map((reason: RiskEvent) =>
    h(
      "li",
      { "data-policy": reason.policy, "data-action": label(RiskAction, reason.action) },
      h("strong", {}, reason.policy || "–"),
      `: ${reason.reason}`,
      reason.values.length ? h("span", { class: "values" }, ` (${valuesText(reason)})`) : null,
    ),
  );
}
