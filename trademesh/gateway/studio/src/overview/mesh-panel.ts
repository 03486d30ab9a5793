// The Overview page's "Strategies and risk" panel, from the overview stream (overview/mesh): the
// risk governor's state, equity, PnL and drawdown; each strategy's state, patches, last signal,
// open positions, realised PnL and fees; and the parts that did not answer this second, named.
// Money is rounded for display (lib/money), the exact value on hover and in data-exact; each
// row and tile carries its values as data attributes for tools and tests.
import type { StrategySummary } from "../gen/trademesh/overwatch/v1/overwatch_pb";
import { clockTime } from "../lib/format";
import { amount } from "../lib/money";
import { percent } from "../risk/gauges";
import { fill, h, table } from "../ui/dom";
import { type MeshOverview, PNL_PART, RISK_PART } from "./mesh";

const COLUMNS = ["strategy", "state", "patches", "last signal", "open positions", "realised PnL", "fees"];

/** The strategies' states as toned badges: active is fine, the others need a look. */
const STATE_TONE: Record<string, string> = { active: "ok", paused: "warn", mixed: "warn", errored: "error" };

function stateBadge(state: string): HTMLElement {
  return h("span", { class: "badge", "data-tone": STATE_TONE[state] ?? "" }, state || "–");
}

/** "12:04:05.120 long" ("–" before the first signal). */
function lastSignal(s: StrategySummary): string {
  if (s.lastSignalNs === 0n) return "–";
  return `${clockTime(s.lastSignalNs)} ${s.lastSignalDirection}`.trim();
}

interface RiskTile {
  key: string;
  title: string;
  value: string;
  shown: Node | string;
}

export class MeshPanel {
  readonly root: HTMLElement;
  private readonly risk = h("div", { id: "overview-risk", class: "kpis" });
  private readonly body = h("tbody", { id: "overview-strategies" });
  private readonly unavailable = h("p", { id: "overview-unavailable", class: "who" });
  private readonly asOf = h("p", { id: "overview-as-of", class: "who" });

  constructor() {
    this.root = h(
      "div",
      { class: "overview-mesh" },
      h("h3", {}, "Risk"),
      this.risk,
      h("h3", {}, "Strategies"),
      h("div", { class: "scroll" }, table(COLUMNS, this.body)),
      this.unavailable,
      this.asOf,
    );
  }

  draw(mesh: MeshOverview): void {
    this.drawRisk(mesh);
    this.drawStrategies(mesh);
    const missing = mesh.unavailable();
    this.unavailable.dataset.parts = missing.join(",");
    this.unavailable.dataset.tone = missing.length === 0 ? "ok" : "warn";
    this.unavailable.textContent =
      mesh.updates === 0 ? "" : missing.length === 0 ? "Every part answered." : `Not answering: ${missing.join(", ")}.`;
    const ts = mesh.last?.tsNs ?? 0n;
    this.asOf.dataset.ts = String(ts);
    this.asOf.dataset.updates = String(mesh.updates);
    this.asOf.textContent = ts === 0n ? "waiting for the overview stream" : `As of ${clockTime(ts)} (every second).`;
  }

  private drawRisk(mesh: MeshOverview): void {
    const risk = mesh.last?.risk;
    this.risk.dataset.read = String(mesh.riskRead());
    if (!mesh.riskRead() || risk === undefined) {
      const why = mesh.updates === 0 ? "waiting for the overview stream" : `the ${RISK_PART} is not answering`;
      fill(this.risk, h("p", { class: "empty" }, why));
      return;
    }
    const tiles: RiskTile[] = [
      { key: "state", title: "state", value: risk.state, shown: risk.state.replaceAll("_", " ") },
      { key: "equity", title: "equity", value: risk.equity, shown: amount(risk.equity) },
      { key: "realized-pnl", title: "realised PnL", value: risk.realizedPnl, shown: amount(risk.realizedPnl) },
      { key: "unrealized-pnl", title: "unrealised PnL", value: risk.unrealizedPnl, shown: amount(risk.unrealizedPnl) },
      { key: "drawdown", title: "drawdown", value: risk.drawdown, shown: percent(risk.drawdown) },
    ];
    const tone = risk.state === "active" ? "ok" : risk.state === "throttled" ? "warn" : "error";
    fill(
      this.risk,
      ...tiles.map((tile) =>
        h(
          "article",
          {
            class: "kpi",
            "data-kpi": tile.key,
            "data-value": tile.value,
            "data-tone": tile.key === "state" ? tone : "ok",
          },
          h("h3", {}, tile.title),
          h("p", { class: "value" }, tile.shown),
        ),
      ),
    );
  }

  private drawStrategies(mesh: MeshOverview): void {
    const strategies = mesh.strategies();
    this.body.dataset.count = String(strategies.length);
    if (strategies.length === 0) {
      const text = mesh.updates === 0 ? "waiting for the overview stream" : "no strategy (no detector answering)";
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, text)));
      return;
    }
    const pnl = mesh.pnlRead();
    const money = (text: string): Node | string => (pnl ? amount(text) : h("span", { title: `the ${PNL_PART} is not answering` }, "–"));
    fill(
      this.body,
      ...strategies.map((s) =>
        h(
          "tr",
          {
            "data-strategy": s.strategyId,
            "data-state": s.state,
            "data-patches": s.patches,
            "data-last-signal-ns": String(s.lastSignalNs),
            "data-direction": s.lastSignalDirection,
            "data-open-positions": s.openPositions,
            "data-realised": s.realisedPnl,
            "data-fees": s.fees,
          },
          h("td", {}, s.strategyId),
          h("td", { "data-col": "state" }, stateBadge(s.state)),
          h("td", { class: "num", "data-col": "patches" }, String(s.patches)),
          h("td", { "data-col": "last-signal" }, lastSignal(s)),
          h("td", { class: "num", "data-col": "open-positions" }, String(s.openPositions)),
          h("td", { class: "num", "data-col": "realised" }, money(s.realisedPnl)),
          h("td", { class: "num", "data-col": "fees" }, money(s.fees)),
        ),
      ),
    );
  }
}
