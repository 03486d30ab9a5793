// The Risk page's KPIs from GetRiskState: the state, equity, drawdown and daily drawdown against
// their limits, the loss streak against its limit, the cooldown's time left, gross and net
// exposure against their caps, the order rates against their limits, and the open orders. A
// tile near its limit (see risk/gauges) is marked data-near; each tile's value and limit are
// also data attributes, for tests and tools (the exact values: money is shown rounded,
// lib/money, its exact value on hover).
import { type Gauge, type GetRiskStateResponse, RiskState } from "../gen/trademesh/risk/v1/inspector_pb";
import { label } from "../lib/format";
import { amount, amountText } from "../lib/money";
import { cooldownLeft, nearLimit, percent, used } from "../risk/gauges";
import { fill, h } from "./dom";

interface Tile {
  key: string;
  title: string;
  /** As the inspector sent it (data-value). */
  value: string;
  /** As shown, when not the value itself (money, rounded). */
  shown?: Node | string;
  /** The limit as the inspector gave it ("" for none). */
  limit?: string;
  /** The line under the value: the limit, or another detail. */
  detail?: string;
  /** value / limit, when there is one. */
  used?: number | null;
  tone?: string;
}

type Unit = "percent" | "money" | "count";

function gaugeTile(key: string, title: string, gauge: Gauge | undefined, unit: Unit = "count"): Tile {
  const value = gauge?.value ?? "";
  const limit = gauge?.limit ?? "";
  const show = (text: string): string =>
    unit === "percent" ? percent(text) : unit === "money" ? amountText(text) : text || "–";
  const detail = limit === "" ? "no limit" : `limit ${show(limit)}`;
  const shown = unit === "money" ? amount(value) : undefined;
  return { key, title, value: unit === "money" ? value : show(value), shown, limit, detail, used: used(value, limit) };
}

function stateTone(state: RiskState): string {
  if (state === RiskState.ACTIVE) return "ok";
  return state === RiskState.THROTTLED ? "warn" : "error";
}

function rateTiles(reply: GetRiskStateResponse): Tile[] {
  const window = `${reply.rateWindowMs} ms`;
  if (reply.rates.length === 0) return [{ key: "rate", title: `order rate / ${window}`, value: "0" }];
  return reply.rates.map((rate) => ({
    key: `rate:${rate.scope}`,
    title: `orders / ${window} · ${rate.scope}`,
    value: String(rate.orders),
    limit: rate.limit,
    detail: rate.limit === "" ? "no limit" : `limit ${rate.limit}`,
    used: used(String(rate.orders), rate.limit),
  }));
}

export class RiskKpis {
  readonly root = h("div", { id: "risk-kpis", class: "kpis" });
  private last: GetRiskStateResponse | null = null;

  show(reply: GetRiskStateResponse): void {
    this.last = reply;
    this.root.dataset.state = label(RiskState, reply.state);
    this.draw();
  }

  private tiles(reply: GetRiskStateResponse): Tile[] {
    const cooldown = cooldownLeft(reply.cooldownUntilNs, Date.now());
    return [
      { key: "state", title: "state", value: label(RiskState, reply.state), tone: stateTone(reply.state) },
      {
        key: "equity",
        title: "equity",
        value: reply.equity,
        shown: amount(reply.equity),
        detail: `peak ${amountText(reply.peakEquity)}`,
      },
      gaugeTile("drawdown", "drawdown", reply.drawdown, "percent"),
      gaugeTile("daily-drawdown", "daily drawdown", reply.dailyDrawdown, "percent"),
      gaugeTile("loss-streak", "loss streak", reply.lossStreak),
      { key: "cooldown", title: "cooldown", value: cooldown || "none", tone: cooldown ? "warn" : "ok" },
      gaugeTile("gross-exposure", "gross exposure", reply.grossExposure, "money"),
      gaugeTile("net-exposure", "net exposure", reply.netExposure, "money"),
      gaugeTile("open-orders", "open orders", reply.openOrders),
      ...rateTiles(reply),
      {
        key: "pnl",
        title: "PnL realized / unrealized",
        value: `${reply.realizedPnl} / ${reply.unrealizedPnl}`,
        shown: h("span", {}, amount(reply.realizedPnl), " / ", amount(reply.unrealizedPnl)),
        detail: `fees ${amountText(reply.fees)}`,
      },
      ...reply.venuesStoodDown.map((v) => ({
        key: `stood-down:${v.name}`,
        title: `${v.name} stood down`,
        value: v.value,
        tone: "error",
      })),
    ];
  }

  private tile(tile: Tile): HTMLElement {
    const near = nearLimit(tile.used ?? null);
    return h(
      "article",
      {
        class: "kpi",
        "data-kpi": tile.key,
        "data-value": tile.value,
        "data-limit": tile.limit ?? "",
        "data-near": near,
        "data-tone": tile.tone ?? (near ? "warn" : "ok"),
        title: tile.used === undefined || tile.used === null ? undefined : `${percent(tile.used)} of the limit`,
      },
      h("h3", {}, tile.title),
      h("p", { class: "value" }, tile.shown ?? tile.value),
      tile.detail === undefined ? null : h("p", { class: "limit" }, tile.detail),
    );
  }

  private draw(): void {
    if (this.last === null) return;
    fill(this.root, ...this.tiles(this.last).map((tile) => this.tile(tile)));
  }
}
