// Horizontal price levels over a candlestick series (a position's entry, stop-loss and
// take-profit): the chart's own price lines, labelled on the price axis, replaced as a whole on
// each show(). The levels are also written to the chart element's data attributes
// (data-level-<role>="<price>"), so tests and tools can read them without reading pixels. The
// price scale widens to keep every level in view.
import type { AutoscaleInfo, IPriceLine, ISeriesApi, SeriesType } from "lightweight-charts";
import { LineStyle } from "lightweight-charts";
import { forDrawing } from "../lib/decimal";

export type LevelRole = "entry" | "stop_loss" | "take_profit";

export interface PriceLevel {
  role: LevelRole;
  price: string;
}

const STYLE: Record<LevelRole, { color: string; title: string; lineStyle: LineStyle }> = {
  entry: { color: "#8b949e", title: "entry", lineStyle: LineStyle.Dotted },
  stop_loss: { color: "#ef5350", title: "SL", lineStyle: LineStyle.Dashed },
  take_profit: { color: "#26a69a", title: "TP", lineStyle: LineStyle.Dashed },
};

export class PriceLines {
  private lines: IPriceLine[] = [];
  private prices: number[] = [];

  constructor(
    private readonly series: ISeriesApi<SeriesType>,
    private readonly element: HTMLElement,
  ) {
    series.applyOptions({ autoscaleInfoProvider: (base: () => AutoscaleInfo | null) => this.autoscale(base()) });
  }

  private autoscale(base: AutoscaleInfo | null): AutoscaleInfo | null {
    if (base === null || base.priceRange === null || this.prices.length === 0) return base;
    const { minValue, maxValue } = base.priceRange;
    return {
      ...base,
      priceRange: {
        minValue: Math.min(minValue, ...this.prices),
        maxValue: Math.max(maxValue, ...this.prices),
      },
    };
  }

  show(levels: readonly PriceLevel[]): void {
    for (const line of this.lines) this.series.removePriceLine(line);
    this.lines = [];
    this.prices = [];
    for (const role of Object.keys(STYLE)) delete this.element.dataset[datasetKey(role as LevelRole)];
    for (const level of levels) {
      const price = forDrawing(level.price);
      if (level.price === "" || !Number.isFinite(price)) continue;
      const style = STYLE[level.role];
      this.lines.push(
        this.series.createPriceLine({ price, lineWidth: 1, axisLabelVisible: true, ...style }),
      );
      this.prices.push(price);
      this.element.dataset[datasetKey(level.role)] = level.price;
    }
  }
}

/** data-level-stop-loss -> dataset.levelStopLoss */
function datasetKey(role: LevelRole): string {
  return `level${role.replace(/(^|_)(\w)/g, (_, _sep: string, c: string) => c.toUpperCase())}`;
}
