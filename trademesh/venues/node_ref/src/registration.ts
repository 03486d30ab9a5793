// Registration with the gateway's registry, as every Python service registers
// (trademesh/core/platform/rpc/registration.py): once the venue serves and a gateway is named (--gateway,
// else TRADEMESH_GATEWAY), it registers (name, kind VENUE, the address others reach it at, the
// services it serves), then heartbeats at the interval the gateway asked for; a heartbeat
// answered NOT_FOUND (the gateway restarted, or let the entry expire) registers again, an
// unreachable gateway is retried with backoff; on shutdown it unregisters (briefly). None of it
// ever blocks or fails the venue: it serves whether or not the gateway knows it. Registering
// takes the mesh token: the caller refuses to start without one (see main.ts).

import { hostname } from "node:os";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Client, Metadata, credentials, status, type ServiceError } from "@grpc/grpc-js";
import {
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  Kind,
  RegisterRequestSchema,
  RegisterResponseSchema,
  UnregisterRequestSchema,
  UnregisterResponseSchema,
} from "./gen/trademesh/registry/v1/registry_pb.js";
import { ENV, VENUE } from "./config.js";
import { log } from "./log.js";

const REGISTRY = "/trademesh.registry.v1.Registry";
const CALL_TIMEOUT_MS = 3000;
const UNREGISTER_TIMEOUT_MS = 1000;
const DEFAULT_INTERVAL_MS = 5000;
const MIN_INTERVAL_MS = 100;
const WILDCARD_HOSTS = new Set(["", "0.0.0.0", "::", "[::]"]);
// Answers no retry of the same registration mends: each one an error line, retried slowly.
const REFUSALS = new Map<number, string>([
  [status.UNAUTHENTICATED, `${ENV.token} is not the mesh token the gateway holds`],
  [status.PERMISSION_DENIED, "the credential may not register (registering takes the mesh token)"],
  [
    status.INVALID_ARGUMENT,
    `the gateway does not take the registration as sent (its name, or its address: ${ENV.advertiseHost}, --host)`,
  ],
  [status.ALREADY_EXISTS, "the name is configured at the gateway itself (--upstream)"],
  [status.FAILED_PRECONDITION, "the gateway does not take the registration now"],
]);

// host:port other services dial: TRADEMESH_ADVERTISE_HOST, else the bind host unless a wildcard.
export function advertisedAddress(bindHost: string, port: number): string {
  let host = (process.env[ENV.advertiseHost] ?? "").trim();
  if (host === "") {
    host = WILDCARD_HOSTS.has(bindHost) ? hostname() : bindHost;
  }
  if (host.includes(":") && !host.startsWith("[")) {
    host = `[${host}]`;
  }
  return `${host}:${port}`;
}

export class GatewayRegistration {
  private readonly client: Client;
  private instanceId: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failing = false;
  private backoffMs = 500;

  constructor(
    readonly gateway: string,
    private readonly address: string,
    private readonly services: readonly string[],
    private readonly version: string,
    private readonly token: string | null,
  ) {
    this.client = new Client(gateway, credentials.createInsecure());
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    if (this.instanceId !== null) {
      try {
        await this.call(
          "Unregister",
          UnregisterRequestSchema,
          UnregisterResponseSchema,
          { instanceId: this.instanceId },
          UNREGISTER_TIMEOUT_MS,
        );
        log.info("unregistered from the gateway", { gateway: this.gateway });
      } catch (error) {
        log.info("could not unregister from the gateway", {
          gateway: this.gateway,
          code: (error as ServiceError).code,
        });
      }
      this.instanceId = null;
    }
    this.client.close();
  }

  private schedule(delayMs: number): void {
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.beat(), delayMs);
    }
  }

  private async beat(): Promise<void> {
    let nextMs: number;
    try {
      nextMs = await this.registerOrHeartbeat();
      this.failing = false;
      this.backoffMs = 500;
    } catch (error) {
      nextMs = this.failed(error as ServiceError);
    }
    this.schedule(nextMs);
  }

  private async registerOrHeartbeat(): Promise<number> {
    if (this.instanceId !== null) {
      await this.call(
        "Heartbeat",
        HeartbeatRequestSchema,
        HeartbeatResponseSchema,
        { instanceId: this.instanceId },
        CALL_TIMEOUT_MS,
      );
      return this.intervalMs;
    }
    const reply = await this.call(
      "Register",
      RegisterRequestSchema,
      RegisterResponseSchema,
      {
        name: VENUE,
        kind: Kind.VENUE,
        address: this.address,
        services: [...this.services],
        metricsPort: 0,
        version: this.version,
      },
      CALL_TIMEOUT_MS,
    );
    this.instanceId = reply.instance?.instanceId ?? null;
    this.intervalMs = Math.max(MIN_INTERVAL_MS, reply.heartbeatIntervalMs);
    log.info("registered with the gateway", { venue: VENUE, address: this.address, gateway: this.gateway });
    return this.intervalMs;
  }

  private intervalMs = DEFAULT_INTERVAL_MS;

  private failed(error: ServiceError): number {
    if (error.code === status.NOT_FOUND && this.instanceId !== null) {
      log.info("the gateway does not know us (restarted?): registering again", { gateway: this.gateway });
      this.instanceId = null;
      return 0;
    }
    const refusal = REFUSALS.get(error.code);
    this.backoffMs = Math.min(this.backoffMs * 2, refusal === undefined ? 10_000 : 30_000);
    if (refusal !== undefined) {
      log.error("the gateway refused to register node-ref; not in the mesh", {
        gateway: this.gateway,
        code: status[error.code] ?? error.code,
        why: refusal,
        retry_ms: this.backoffMs,
      });
    } else if (!this.failing) {
      this.failing = true; // once per outage
      log.warn("gateway unreachable; retrying in the background", {
        gateway: this.gateway,
        detail: error.details ?? String(error),
      });
    }
    return Math.min(this.backoffMs, refusal === undefined ? this.intervalMs : this.backoffMs);
  }

  private call<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    request: Parameters<typeof create<I>>[1],
    timeoutMs: number,
  ): Promise<MessageShape<O>> {
    const metadata = new Metadata();
    if (this.token !== null) {
      metadata.set("authorization", `Bearer ${this.token}`);
    }
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `${REGISTRY}/${method}`,
        (value: MessageShape<I>) => Buffer.from(toBinary(input, value)),
        (bytes: Buffer) => fromBinary(output, bytes),
        create(input, request),
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error, response) => (error !== null || response === undefined ? reject(error) : resolve(response)),
      );
    });
  }
}
