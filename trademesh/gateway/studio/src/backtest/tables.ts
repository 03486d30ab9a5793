// The Backtest page's tables: a run's metrics (a row per strategy, the account's "total" last,
// a column per figure), two or more runs' metrics side by side (a row per figure, a column per
// run and strategy), and a run's round trips. Each cell carries its figure's key and the value as
// sent (data-col, data-value), so tests read the figures without parsing the text; money is
// rounded for display (lib/money), its exact value on hover, prices at the run venue's tick.
import type { Metrics, RoundTrip } from "../gen/trademesh/backtest/v1/backtest_pb";
import { clockTime } from "../lib/format";
import { amount, price, size } from "../lib/money";
import { fill, h, table } from "../ui/dom";
import { FIGURES, type Figure, strategiesFirst, tone } from "./figures";

// Round trips listed (a long run may have thousands; the report has them all).
const TRIPS_SHOWN = 200;

function cell(figure: Figure, metrics: Metrics, attrs: Record<string, string> = {}): HTMLElement {
  const raw = figure.raw(metrics);
  const cls = figure.signed === true ? `num ${tone(raw)}` : "num";
  const title = figure.money === true && raw !== "" ? raw : undefined;
  return h("td", { ...attrs, class: cls, "data-col": figure.key, "data-value": raw, title }, figure.text(metrics));
}

/** A run's metrics: a row per strategy, then "total". */
export function metricsTable(metrics: readonly Metrics[]): HTMLTableElement {
  const body = h("tbody", { id: "backtest-metrics-body" });
  const rows = strategiesFirst(metrics).map((m) =>
    h(
      "tr",
      { "data-strategy": m.strategy, class: m.strategy === "total" ? "total" : "" },
      h("td", {}, m.strategy),
      ...FIGURES.map((f) => cell(f, m)),
    ),
  );
  if (rows.length === 0) {
    fill(body, h("tr", { class: "empty" }, h("td", { colspan: FIGURES.length + 1 }, "no metrics")));
  } else fill(body, ...rows);
  const t = table(["strategy", ...FIGURES.map((f) => f.label)], body);
  t.id = "backtest-metrics";
  t.dataset.strategies = String(metrics.length);
  return t;
}

export interface Compared {
  runId: string;
  /** "A", "B": how the page names the run. */
  name: string;
  metrics: readonly Metrics[];
}

/** Runs' metrics side by side: a row per figure, a column per run and strategy. */
export function compareTable(runs: readonly Compared[]): HTMLTableElement {
  const columns: [Compared, Metrics][] = runs.flatMap((run) =>
    strategiesFirst(run.metrics).map((m): [Compared, Metrics] => [run, m]),
  );
  const head = h(
    "tr",
    {},
    h("th", {}, "metric"),
    ...columns.map(([run, m]) =>
      h("th", { class: "num", "data-run-id": run.runId, "data-strategy": m.strategy }, `${run.name} · ${m.strategy}`),
    ),
  );
  const body = h(
    "tbody",
    {},
    ...FIGURES.map((figure) =>
      h(
        "tr",
        { "data-metric": figure.key },
        h("td", {}, figure.label),
        ...columns.map(([run, m]) => cell(figure, m, { "data-run-id": run.runId, "data-strategy": m.strategy })),
      ),
    ),
  );
  return h("table", { id: "backtest-compare-metrics" }, h("thead", {}, head), body);
}

const TRIP_COLUMNS = ["strategy", "symbol", "side", "opened", "closed", "size", "entry", "exit", "fees", "pnl"];

/** A run's round trips, the first TRIPS_SHOWN of them; `tick` gives a symbol's tick size at the
 * run's venue (undefined: not known, the prices exact). */
export function tripsTable(trips: readonly RoundTrip[], tick: (symbol: string) => string | undefined): HTMLElement {
  const body = h("tbody", { id: "backtest-trips", "data-count": trips.length });
  const shown = trips.slice(0, TRIPS_SHOWN);
  if (shown.length === 0) {
    fill(body, h("tr", { class: "empty" }, h("td", { colspan: TRIP_COLUMNS.length }, "no round trips")));
  } else {
    fill(
      body,
      ...shown.map((t) =>
        h(
          "tr",
          { "data-strategy": t.strategy, "data-symbol": t.symbol, "data-pnl": t.pnl },
          h("td", {}, t.strategy),
          h("td", {}, t.symbol),
          h("td", { class: t.side === "long" ? "buy" : "sell" }, t.side),
          h("td", {}, clockTime(t.openedNs)),
          h("td", {}, clockTime(t.closedNs)),
          h("td", { class: "num", "data-col": "size" }, size(t.size)),
          h("td", { class: "num", "data-col": "entry" }, price(t.entryPrice, tick(t.symbol))),
          h("td", { class: "num", "data-col": "exit" }, price(t.exitPrice, tick(t.symbol))),
          h("td", { class: "num", "data-col": "fees" }, amount(t.fees)),
          h("td", { class: `num ${tone(t.pnl)}`, "data-col": "pnl" }, amount(t.pnl)),
        ),
      ),
    );
  }
  const cut = trips.length > shown.length;
  const more = cut ? h("p", { class: "who" }, `the first ${shown.length} of ${trips.length}`) : null;
  return h("div", { class: "scroll trips" }, table(TRIP_COLUMNS, body), more);
}
