// One line per record on stderr, as every trademesh process logs: text by default, one JSON
// object a line with TRADEMESH_LOG_FORMAT=json; records below TRADEMESH_LOG_LEVEL are dropped.
// Structured fields (venue, symbol, stream) ride along; no secret is ever a field.

import { SERVICE_LABEL } from "./config.js";

type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";
type Fields = Record<string, string | number | bigint | boolean>;

const ORDER: Record<Level, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };
const threshold = ORDER[(process.env.TRADEMESH_LOG_LEVEL?.toUpperCase() as Level | undefined) ?? "INFO"] ?? 20;
const asJson = process.env.TRADEMESH_LOG_FORMAT === "json";

function write(level: Level, message: string, fields: Fields): void {
  if (ORDER[level] < threshold) {
    return;
  }
  const time = new Date().toISOString();
  if (asJson) {
    const values = Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [k, typeof v === "bigint" ? String(v) : v]),
    );
    process.stderr.write(
      `${JSON.stringify({ time, level, service: SERVICE_LABEL, logger: "node_ref", message, ...values })}\n`,
    );
    return;
  }
  const extra = Object.entries(fields)
    .map(([k, v]) => ` ${k}=${String(v)}`)
    .join("");
  process.stderr.write(`${time} ${level} ${SERVICE_LABEL}: ${message}${extra}\n`);
}

export const log = {
  debug: (message: string, fields: Fields = {}): void => write("DEBUG", message, fields),
  info: (message: string, fields: Fields = {}): void => write("INFO", message, fields),
  warn: (message: string, fields: Fields = {}): void => write("WARNING", message, fields),
  error: (message: string, fields: Fields = {}): void => write("ERROR", message, fields),
};
