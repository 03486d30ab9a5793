// A reliability diagram in SVG: per bin of predicted probability, the mean prediction (x) against
// the observed rate (y), before calibration and after, on held-out data, over the diagonal a
// perfectly calibrated score would follow; a dot's size is its bin's count. Bins with no samples
// are left out. The Brier score and the ECE before and after are in its legend. Each dot carries
// its figures in data attributes (data-count, data-predicted, data-observed) for tools and tests.
import type { RegimeCalibration, ReliabilityBin } from "../gen/trademesh/advisor/v1/messages_pb";
import { statistic } from "../lib/format";
import { svg } from "./dom";

const SIZE = 300; // the plot's side
const LEFT = 44;
const TOP = 12;
const RIGHT = 16;
const BOTTOM = 48;
const LEGEND_ROW = 18;
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];
const MIN_R = 2.5;
const MAX_R = 8;

type Series = "before" | "after";

const x = (p: number): number => LEFT + p * SIZE;
const y = (p: number): number => TOP + (1 - p) * SIZE;

/** Bins that hold samples and finite figures (an empty bin's mean is NaN). */
export function shownBins(bins: readonly ReliabilityBin[]): ReliabilityBin[] {
  const finite = (b: ReliabilityBin): boolean => Number.isFinite(b.meanPredicted) && Number.isFinite(b.observedRate);
  return bins.filter((b) => b.count > 0 && finite(b));
}

function axes(): SVGGElement {
  const group = svg("g", { class: "axes" });
  for (const t of TICKS) {
    group.append(
      svg("line", { class: "grid", x1: x(t), y1: y(0), x2: x(t), y2: y(1) }),
      svg("line", { class: "grid", x1: x(0), y1: y(t), x2: x(1), y2: y(t) }),
      svg("text", { x: x(t), y: y(0) + 14, "text-anchor": "middle" }, t.toFixed(1)),
      svg("text", { x: x(0) - 6, y: y(t) + 4, "text-anchor": "end" }, t.toFixed(1)),
    );
  }
  group.append(
    svg("rect", { class: "frame", x: x(0), y: y(1), width: SIZE, height: SIZE }),
    svg("line", { class: "diagonal", x1: x(0), y1: y(0), x2: x(1), y2: y(1) }),
    svg("text", { x: x(0.5), y: y(0) + 32, "text-anchor": "middle" }, "predicted probability"),
    svg("text", { transform: `translate(12 ${y(0.5)}) rotate(-90)`, "text-anchor": "middle" }, "observed rate"),
  );
  return group;
}

function binTitle(series: Series, bin: ReliabilityBin): string {
  const range = `${bin.lower.toFixed(1)}–${bin.upper.toFixed(1)}`;
  const figures = `predicted ${statistic(bin.meanPredicted)}, observed ${statistic(bin.observedRate)}`;
  return `${series} calibration, bin ${range}: ${bin.count} samples, ${figures}`;
}

function series(name: Series, bins: readonly ReliabilityBin[], largest: number): SVGGElement {
  const shown = shownBins(bins);
  const group = svg("g", { class: `series ${name}`, "data-series": name });
  const points = shown.map((b) => `${x(b.meanPredicted)},${y(b.observedRate)}`).join(" ");
  if (shown.length > 1) group.append(svg("polyline", { class: "line", points }));
  for (const bin of shown) {
    const r = MIN_R + (MAX_R - MIN_R) * Math.sqrt(bin.count / largest);
    const attrs = {
      class: `bin ${name}`,
      cx: x(bin.meanPredicted),
      cy: y(bin.observedRate),
      r: r.toFixed(1),
      "data-count": bin.count,
      "data-predicted": bin.meanPredicted,
      "data-observed": bin.observedRate,
    };
    group.append(svg("circle", attrs, svg("title", {}, binTitle(name, bin))));
  }
  return group;
}

/** Under the plot: the two series' keys, then the figures (before → after). */
function legend(regime: RegimeCalibration): SVGGElement {
  const top = TOP + SIZE + BOTTOM;
  const at = (row: number): number => top + row * LEGEND_ROW;
  const key = (series: Series, column: number): SVGElement[] => [
    svg("circle", { class: `bin ${series}`, cx: LEFT + column + 4, cy: at(0) - 4, r: 4 }),
    svg("text", { x: LEFT + column + 14, y: at(0) }, series),
  ];
  const brier = `Brier ${statistic(regime.brierBefore)} → ${statistic(regime.brierAfter)}`;
  const ece = `ECE ${statistic(regime.eceBefore)} → ${statistic(regime.eceAfter)}`;
  return svg(
    "g",
    { class: "legend" },
    ...key("before", 0),
    ...key("after", 80),
    svg("text", { x: LEFT + 160, y: at(0), class: "muted" }, `${regime.samples} samples`),
    svg("text", { x: LEFT, y: at(1) }, brier),
    svg("text", { x: LEFT + 160, y: at(1) }, ece),
  );
}

/** The diagram of one regime's calibration. */
export function reliabilityDiagram(regime: RegimeCalibration): SVGSVGElement {
  const width = LEFT + SIZE + RIGHT;
  const height = TOP + SIZE + BOTTOM + 2 * LEGEND_ROW;
  const all = [...shownBins(regime.binsBefore), ...shownBins(regime.binsAfter)];
  const largest = Math.max(1, ...all.map((b) => b.count));
  const root = svg("svg", {
    id: "reliability-diagram",
    class: "reliability",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `reliability diagram of ${regime.regime}`,
    "data-regime": regime.regime,
    "data-bins-before": shownBins(regime.binsBefore).length,
    "data-bins-after": shownBins(regime.binsAfter).length,
  });
  root.append(
    axes(),
    series("before", regime.binsBefore, largest),
    series("after", regime.binsAfter, largest),
    legend(regime),
  );
  return root;
}
