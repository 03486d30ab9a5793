// The candle intervals Studio offers, as the contracts name them (trademesh.common.v1.Timeframe).
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";

export interface TimeframeOption {
  value: Timeframe;
  label: string;
  seconds: number;
  /** Intervals open at a multiple of `seconds` past this (since the epoch): 0 but for weeks. */
  offsetS: number;
}

// 1970-01-01 was a Thursday; weeks open Monday 00:00 UTC, 4 days later, as the venues' 1w
// candles and the mesh's 1w bars do (trademesh.core.domain.model.Timeframe).
const WEEK_OFFSET_S = 4 * 86_400;

export const TIMEFRAMES: readonly TimeframeOption[] = [
  { value: Timeframe.TIMEFRAME_1_SECOND, label: "1s", seconds: 1, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_1_MINUTE, label: "1m", seconds: 60, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_5_MINUTES, label: "5m", seconds: 300, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_15_MINUTES, label: "15m", seconds: 900, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_1_HOUR, label: "1h", seconds: 3600, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_4_HOURS, label: "4h", seconds: 14_400, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_1_DAY, label: "1d", seconds: 86_400, offsetS: 0 },
  { value: Timeframe.TIMEFRAME_1_WEEK, label: "1w", seconds: 604_800, offsetS: WEEK_OFFSET_S },
];

/** The start (seconds since the epoch) of the interval of `intervalS` that holds `seconds`. */
export function intervalStart(seconds: number, intervalS: number, offsetS = 0): number {
  const past = (seconds - offsetS) % intervalS;
  return seconds - (past < 0 ? past + intervalS : past);
}

export function timeframeByLabel(text: string): TimeframeOption | undefined {
  return TIMEFRAMES.find((option) => option.label === text);
}
