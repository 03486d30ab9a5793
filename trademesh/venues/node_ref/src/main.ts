// node trademesh/venues/node_ref/dist/src/main.js --port N [--host H] [--gateway HOST:PORT] [--seed N] [--history-s S]
//
// Starts the node-ref venue: plays its market's history, serves MarketData, TradeFlow and Admin
// (with health and reflection), prints the one-line JSON serving announcement every trademesh
// service prints on stdout (port 0: the port it picked), registers with the gateway when one is
// named, and on SIGTERM or SIGINT leaves: unregistered, NOT_SERVING, streams ended, calls drained.
// A bad flag or setting is one line on stderr and exit code 2.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Auth } from "./auth.js";
import {
  DEFAULT_HISTORY_S,
  DEFAULT_PORT,
  DEFAULT_SEED,
  DRAIN_DELAY_S,
  ENV,
  GRACE_S,
  MAX_HISTORY_S,
  SERVICE_LABEL,
} from "./config.js";
import { log } from "./log.js";
import { GatewayRegistration, advertisedAddress } from "./registration.js";
import { HEALTH_SERVICE, SERVICE_NAMES, createServer } from "./server.js";
import { Venue } from "./venue.js";

class UsageError extends Error {}

// A bearer token as gRPC metadata carries it: printable ASCII, no space.
const TOKEN = /^[!-~]+$/;

function secret(name: string): string | null {
  const value = process.env[name] ?? "";
  if (value === "") {
    return null;
  }
  if (!TOKEN.test(value)) {
    throw new UsageError(
      `${name}: holds whitespace or a character an authorization header cannot carry (a trailing newline from a file?)`,
    );
  }
  return value;
}

function integer(flag: string, text: string | undefined, fallback: bigint, low: bigint, high: bigint): bigint {
  if (text === undefined) {
    return fallback;
  }
  if (!/^[0-9]+$/.test(text) || BigInt(text) < low || BigInt(text) > high) {
    throw new UsageError(`--${flag}: must be a whole number between ${low} and ${high}, got '${text.slice(0, 32)}'`);
  }
  return BigInt(text);
}

interface Options {
  host: string;
  port: number;
  gateway: string;
  seed: bigint;
  historyS: number;
  token: string | null;
  tradeToken: string | null;
  drainDelayS: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      gateway: { type: "string" },
      seed: { type: "string" },
      "history-s": { type: "string" },
    },
    strict: true,
  });
  const token = secret(ENV.token);
  const tradeToken = secret(ENV.tradeToken);
  if (token !== null && tradeToken === token) {
    throw new UsageError(
      `${ENV.tradeToken}: must differ from the mesh token (${ENV.token}): every service holds that one`,
    );
  }
  const gateway = (values.gateway ?? process.env[ENV.gateway] ?? "").trim();
  if (gateway !== "" && token === null) {
    throw new UsageError(
      `${ENV.token}: not set, and a gateway is named (${gateway}): the gateway refuses a registration without the ` +
        "mesh token, and this venue would serve with auth off; set it to the mesh's token",
    );
  }
  const delayText = (process.env[ENV.drainDelayS] ?? "").trim();
  const drainDelayS = delayText === "" ? DRAIN_DELAY_S : Number(delayText);
  if (!(drainDelayS >= 0 && drainDelayS <= 60)) {
    throw new UsageError(`${ENV.drainDelayS}: '${delayText.slice(0, 32)}' is not a number of seconds in 0..60`);
  }
  return {
    host: values.host ?? "127.0.0.1",
    port: Number(integer("port", values.port, BigInt(DEFAULT_PORT), 0n, 65535n)),
    gateway,
    seed: integer("seed", values.seed, DEFAULT_SEED, 0n, 2n ** 63n - 1n),
    historyS: Number(integer("history-s", values["history-s"], BigInt(DEFAULT_HISTORY_S), 0n, BigInt(MAX_HISTORY_S))),
    token,
    tradeToken,
    drainDelayS,
  };
}

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version?: string;
  };
  return manifest.version ?? "";
}

// The line the mesh's tools wait for (trademesh/core/platform/service/lifecycle.py's _announce), as Python's
// json.dumps writes it.
function announce(host: string, port: number): void {
  const line = { event: "serving", service: SERVICE_LABEL, host, port, metrics_port: 0 };
  const text = Object.entries(line)
    .map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`)
    .join(", ");
  process.stdout.write(`{${text}}\n`);
}

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = options(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`${SERVICE_LABEL}: ${(error as Error).message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const auth = new Auth(opts.token, opts.tradeToken);
  const venue = new Venue({ seed: opts.seed, historyS: opts.historyS });
  venue.start();
  let served;
  try {
    served = await createServer(venue, opts.host, opts.port, auth);
  } catch (error) {
    process.stderr.write(`${SERVICE_LABEL}: cannot listen on ${opts.host}:${opts.port}: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const server = served;
  venue.onDrain = () => server.setServing(false);
  if (auth.isOff) {
    log.warn(
      `AUTH IS OFF for ${SERVICE_LABEL}: no token configured (set ${ENV.token}); anyone who can reach this port can call every RPC` +
        (opts.tradeToken !== null ? " but the order RPCs (they need the trading credential)" : ""),
    );
  } else if (opts.tradeToken === null) {
    log.warn(
      `${SERVICE_LABEL} has no trading credential (set ${ENV.tradeToken}): it refuses the order RPCs to every caller`,
    );
  }
  announce(opts.host, server.port);
  log.info("serving gRPC", { venue: "node-ref", host: opts.host, port: server.port });
  let registration: GatewayRegistration | null = null;
  if (opts.gateway !== "") {
    registration = new GatewayRegistration(
      opts.gateway,
      advertisedAddress(opts.host, server.port),
      [...SERVICE_NAMES, HEALTH_SERVICE],
      version(),
      opts.token,
    );
    registration.start();
  }
  let leaving = false;
  const leave = async (signal: string): Promise<void> => {
    if (leaving) {
      return;
    }
    leaving = true;
    log.info("stopping", { signal });
    await registration?.stop();
    server.setReady(false);
    server.setServing(false);
    await new Promise((resolve) => setTimeout(resolve, opts.drainDelayS * 1000));
    venue.stop();
    server.setAlive(false);
    const forced = setTimeout(() => {
      server.server.forceShutdown();
      process.exit(0);
    }, GRACE_S * 1000);
    server.server.tryShutdown(() => {
      clearTimeout(forced);
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => void leave("SIGTERM"));
  process.on("SIGINT", () => void leave("SIGINT"));
}

void main();
