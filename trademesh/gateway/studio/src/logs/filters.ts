// The Logs page's filters, as they stand in its URL: "#/logs?service=ingest&level=WARNING&trace=<id>"
// (service, instance, level, venue, trace, text; follow=0 for a one-off look instead of a live
// tail). The hash is the page's state: a link anywhere in Studio opens the page with its filters,
// and a reload keeps them.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { LogLevel, type TailRequestSchema } from "../gen/trademesh/logs/v1/logs_pb";

export interface LogFilters {
  service: string;
  instance: string;
  /** A level's name ("WARNING"), "" for every level. */
  level: string;
  venue: string;
  trace: string;
  text: string;
  follow: boolean;
}

/** The levels a filter may name, lowest first. */
export const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;

const TEXT_KEYS = ["service", "instance", "level", "venue", "trace", "text"] as const;

export function emptyFilters(): LogFilters {
  return { service: "", instance: "", level: "", venue: "", trace: "", text: "", follow: true };
}

/** The filters of the query part of "#/logs?..." (unknown keys and an unknown level ignored). */
export function parseFilters(query: string): LogFilters {
  const params = new URLSearchParams(query);
  const filters = emptyFilters();
  for (const key of TEXT_KEYS) filters[key] = (params.get(key) ?? "").trim();
  filters.level = filters.level.toUpperCase();
  if (!(LEVELS as readonly string[]).includes(filters.level)) filters.level = "";
  filters.follow = params.get("follow") !== "0";
  return filters;
}

/** The page's hash for `filters` (only the set ones): "#/logs?trace=abc". */
export function logsHash(filters: Partial<LogFilters>): string {
  const params = new URLSearchParams();
  for (const key of TEXT_KEYS) {
    const value = filters[key];
    if (value !== undefined && value !== "") params.set(key, value);
  }
  if (filters.follow === false) params.set("follow", "0");
  const query = params.toString();
  return query === "" ? "#/logs" : `#/logs?${query}`;
}

/** The Tail request of `filters`, with the newest `backlog` matching lines first. */
export function tailRequest(filters: LogFilters, backlog: number): MessageInitShape<typeof TailRequestSchema> {
  const level = filters.level === "" ? LogLevel.UNSPECIFIED : LogLevel[filters.level as keyof typeof LogLevel];
  return {
    service: filters.service,
    instance: filters.instance,
    minLevel: level,
    venue: filters.venue,
    traceId: filters.trace,
    text: filters.text,
    backlog,
    follow: filters.follow,
  };
}
