// The venue's gRPC server: MarketData, TradeFlow and Admin through the edge (src/rpc.ts), the
// standard health service (grpc.health.v1, with the Python services' names: "" and each service
// for readiness to serve, "trademesh.liveness" and "trademesh.readiness" for probes) and server
// reflection (v1 and v1alpha) of every service it serves, health and reflection open to all.

import { createRequire } from "node:module";
import { toBinary } from "@bufbuild/protobuf";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { HealthImplementation, service as healthService } from "grpc-health-check";
import type { ServingStatus } from "grpc-health-check";
import { file_trademesh_admin_v1_admin } from "./gen/trademesh/admin/v1/admin_pb.js";
import { file_trademesh_common_v1_common } from "./gen/trademesh/common/v1/common_pb.js";
import { file_trademesh_marketdata_v1_marketdata } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import { file_trademesh_tradeflow_v1_tradeflow } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import { Auth } from "./auth.js";
import { MAX_REQUEST_BYTES, MAX_SEND_BYTES } from "./config.js";
import { addService } from "./rpc.js";
import { adminHandlers, SERVICE as ADMIN } from "./services/admin.js";
import { marketDataHandlers, SERVICE as MARKET_DATA } from "./services/marketdata.js";
import { tradeFlowHandlers, SERVICE as TRADE_FLOW } from "./services/tradeflow.js";
import type { Venue } from "./venue.js";

export const LIVENESS_SERVICE = "trademesh.liveness";
export const READINESS_SERVICE = "trademesh.readiness";
export const HEALTH_SERVICE = "grpc.health.v1.Health";
const REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection";
export const SERVICE_NAMES = [MARKET_DATA.typeName, TRADE_FLOW.typeName, ADMIN.typeName];

const FILES: GenFile[] = [
  file_trademesh_common_v1_common,
  file_trademesh_marketdata_v1_marketdata,
  file_trademesh_tradeflow_v1_tradeflow,
  file_trademesh_admin_v1_admin,
];

export class Served {
  constructor(
    readonly server: Server,
    readonly port: number,
    private readonly health: HealthImplementation,
  ) {}

  // Health for "" and every served service (the API), and the probes' names.
  setServing(serving: boolean): void {
    const value: ServingStatus = serving ? "SERVING" : "NOT_SERVING";
    for (const name of ["", ...SERVICE_NAMES]) {
      this.health.setStatus(name, value);
    }
  }

  setReady(ready: boolean): void {
    this.health.setStatus(READINESS_SERVICE, ready ? "SERVING" : "NOT_SERVING");
  }

  setAlive(alive: boolean): void {
    this.health.setStatus(LIVENESS_SERVICE, alive ? "SERVING" : "NOT_SERVING");
  }
}

// The reflected schema: our files as protobuf-es holds them, and the health and reflection
// services' own, in the package-definition shape @grpc/reflection reads.
function reflected(): PackageDefinition {
  const ours = FILES.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  const healthFiles = healthService.Check!.requestType.fileDescriptorProtos;
  const require = createRequire(import.meta.url);
  const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto");
  const reflection = loadSync(reflectionProto)[REFLECTION_SERVICE] as unknown as Record<
    string,
    { requestType: { fileDescriptorProtos: Buffer[] } }
  >;
  const reflectionFiles = reflection.ServerReflectionInfo!.requestType.fileDescriptorProtos;
  const definition = (files: Buffer[]) => ({
    format: "Protocol Buffer 3 DescriptorProto",
    type: {},
    fileDescriptorProtos: files,
  });
  return {
    "trademesh.node_ref": definition(ours),
    [HEALTH_SERVICE]: definition(healthFiles),
    [REFLECTION_SERVICE]: definition(reflectionFiles),
  } as unknown as PackageDefinition;
}

export async function createServer(venue: Venue, host: string, port: number, auth: Auth): Promise<Served> {
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    "grpc.max_send_message_length": MAX_SEND_BYTES,
    // Callers keep quiet streams alive with pings (the gateway every 30 s): allow them without
    // data, or the stream dies with GOAWAY "too_many_pings".
    "grpc.http2.min_ping_interval_without_data_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  addService(server, auth, MARKET_DATA, marketDataHandlers(venue));
  addService(server, auth, TRADE_FLOW, tradeFlowHandlers(venue));
  addService(server, auth, ADMIN, adminHandlers(venue));
  const health = new HealthImplementation({});
  health.addToServer(server);
  new ReflectionService(reflected(), {
    services: [...SERVICE_NAMES, HEALTH_SERVICE, REFLECTION_SERVICE],
  }).addToServer(server);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (error, chosen) =>
      error === null ? resolve(chosen) : reject(error),
    );
  });
  const served = new Served(server, bound, health);
  served.setAlive(true);
  served.setReady(true);
  served.setServing(true);
  return served;
}
