// The policy status from GetPolicies: each policy key with its limit, the current value and the
// fraction of the limit used; a policy near its limit (see risk/gauges) is highlighted. The
// policy file's text is shown folded below, with where it came from.
import type { GetPoliciesResponse, PolicyStatus } from "../gen/trademesh/risk/v1/inspector_pb";
import { clockTime } from "../lib/format";
import { nearLimit, percent, policyValue } from "../risk/gauges";
import { fill, h, table } from "./dom";

const COLUMNS = ["policy", "limit", "value", "used"];

export class PolicyStatusTable {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "policy-status" });
  private readonly source = h("p", { id: "policy-source", class: "empty" });
  private readonly text = h("pre", { id: "policy-toml" });

  constructor() {
    this.root = h(
      "div",
      { class: "policies" },
      table(COLUMNS, this.body),
      this.source,
      h("details", {}, h("summary", {}, "Policy file"), this.text),
    );
    fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "loading…")));
  }

  show(reply: GetPoliciesResponse): void {
    const from = reply.path === "" ? "the shipped defaults or the API" : reply.path;
    this.source.textContent = `from ${from}, loaded ${clockTime(reply.loadedNs)}`;
    if (this.text.textContent !== reply.toml) this.text.textContent = reply.toml;
    const rows = [...reply.status].sort((a, b) => Number(nearLimit(b.used)) - Number(nearLimit(a.used)));
    if (rows.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no limits set")));
    } else fill(this.body, ...rows.map((status) => this.row(status)));
  }

  private row(status: PolicyStatus): HTMLElement {
    const near = nearLimit(status.used);
    return h(
      "tr",
      { "data-policy": status.key, "data-used": status.used, "data-near": near, class: near ? "near-limit" : "" },
      h("td", {}, status.key),
      h("td", { class: "num", "data-limit": status.limit, title: status.limit }, policyValue(status.key, status.limit)),
      h("td", { class: "num", "data-value": status.value, title: status.value }, policyValue(status.key, status.value)),
      h("td", { class: "num" }, status.used === "" ? "–" : percent(status.used)),
    );
  }
}
