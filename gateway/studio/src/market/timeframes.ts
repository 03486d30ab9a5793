// The candle intervals Studio offers, as the contracts name them (trademesh.common.v1.Timeframe).
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";

export interface TimeframeOption {
  value: Timeframe;
  label: string;
  seconds: number;
}

export const TIMEFRAMES: readonly TimeframeOption[] = [
  { value: Timeframe.TIMEFRAME_1_SECOND, label: "1s", seconds: 1 },
  { value: Timeframe.TIMEFRAME_1_MINUTE, label: "1m", seconds: 60 },
  { value: Timeframe.TIMEFRAME_5_MINUTES, label: "5m", seconds: 300 },
  { value: Timeframe.TIMEFRAME_15_MINUTES, label: "15m", seconds: 900 },
  { value: Timeframe.TIMEFRAME_1_HOUR, label: "1h", seconds: 3600 },
  { value: Timeframe.TIMEFRAME_4_HOURS, label: "4h", seconds: 14_400 },
  { value: Timeframe.TIMEFRAME_1_DAY, label: "1d", seconds: 86_400 },
];

export function timeframeByLabel(text: string): TimeframeOption | undefined {
  return TIMEFRAMES.find((option) => option.label === text);
}
