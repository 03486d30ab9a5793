// A decision's conviction before and after calibration: the three parts stage 4 combined
// (detector, model, rules), the raw conviction, the calibrated one (regime, method) and the final
// one after the synthesis, as the decimal strings the advisor sent; two bars compare raw and
// calibrated, and an arrow says which way calibration moved it.
import type { Decision } from "../gen/trademesh/advisor/v1/messages_pb";
import { CalibrationMethod } from "../gen/trademesh/advisor/v1/messages_pb";
import { compareDecimal, forDrawing, isDecimal } from "../lib/decimal";
import { label } from "../lib/format";
import { h } from "./dom";

function part(name: string, value: string, id?: string): HTMLElement {
  return h(
    "div",
    { class: "part", id, "data-value": value },
    h("span", { class: "muted" }, name),
    h("span", { class: "value" }, value === "" ? "–" : value),
  );
}

function bar(name: string, value: string): HTMLElement {
  const width = isDecimal(value) ? Math.min(100, forDrawing(value) * 100) : 0;
  return h(
    "div",
    { class: `conviction-bar ${name}` },
    h("span", { class: "muted" }, name),
    h("span", { class: "track" }, h("span", { class: "fill", style: `width: ${width.toFixed(1)}%` })),
    h("span", { class: "value" }, value === "" ? "–" : value),
  );
}

/** "▲ raised", "▼ lowered", "= unchanged" by calibration; "" when either side is unknown. */
export function calibrationMove(raw: string, calibrated: string): string {
  if (!isDecimal(raw) || !isDecimal(calibrated)) return "";
  const order = compareDecimal(calibrated, raw);
  return order > 0 ? "▲ raised" : order < 0 ? "▼ lowered" : "= unchanged";
}

/** The conviction section; `final` is the synthesis' final conviction ("" when not run). */
export function convictionView(decision: Decision, final: string): HTMLElement {
  const c = decision.conviction;
  if (c === undefined) {
    const why = "no conviction: the decision was blocked before stage 4";
    return h("section", { id: "decision-conviction", class: "empty" }, why);
  }
  const method = label(CalibrationMethod, c.method);
  const move = calibrationMove(c.raw, c.calibrated);
  return h(
    "section",
    { id: "decision-conviction", class: "conviction" },
    h("h3", {}, "Conviction", h("span", { id: "calibration-move", class: "badge" }, move || "–")),
    h(
      "div",
      { class: "parts" },
      part("detector", c.detector),
      part("model", c.modelProbability),
      part("rules", c.ruleScore),
      part("before calibration", c.raw, "conviction-raw"),
      part("after calibration", c.calibrated, "conviction-calibrated"),
      part("final", final, "conviction-final"),
      part("regime", c.regime === "" ? "" : `${c.regime} (${method})`, "conviction-regime"),
    ),
    bar("before", c.raw),
    bar("after", c.calibrated),
  );
}
