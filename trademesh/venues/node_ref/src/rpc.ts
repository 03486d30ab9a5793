// The server edge: every method of a protobuf-es service served by @grpc/grpc-js, each call
// through the same steps: auth on the metadata first, then the body decoded (a malformed one is
// INVALID_ARGUMENT, never UNKNOWN), held to the request limits, the request's own auth (a
// privileged field), the handler, and its error mapped to a status (an unexpected one INTERNAL,
// logged with its stack). Request bodies reach the edge as raw bytes, so a body is parsed only
// once its token is known good. Server streams write at the pace their client reads.

import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  Metadata,
  status,
  type Server,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from "@grpc/grpc-js";
import type { Auth } from "./auth.js";
import { InvalidArgument, VenueError, toServiceError } from "./errors.js";
import { dropRepeats, violationsOf } from "./limits.js";
import { log } from "./log.js";

// What a stream handler writes to: a message at a time, waiting while the client is behind.
export interface Sink {
  // Resolves once the message is handed over (or the call is gone: then `cancelled`).
  write(message: Uint8Array | object): Promise<void>;
  sendHeaders(): void;
  readonly cancelled: boolean;
  // Resolves when the client goes away.
  readonly gone: Promise<void>;
}

export interface CallInfo {
  metadata: Metadata;
}

export type UnaryHandler = (request: never, call: CallInfo) => object | Promise<object>;
export type StreamHandler = (request: never, sink: Sink, call: CallInfo) => Promise<void>;

export interface Handlers {
  unary?: Record<string, UnaryHandler>;
  stream?: Record<string, StreamHandler>;
  // Stream methods whose handler writes encoded responses itself.
  raw?: ReadonlySet<string>;
}

const identity = (value: Buffer): Buffer => value;

function decode<T extends DescMessage>(schema: T, body: Buffer): MessageShape<T> {
  let request: MessageShape<T>;
  try {
    request = fromBinary(schema, body);
  } catch {
    throw InvalidArgument.field("(request body)", `is not a valid ${schema.typeName} message`);
  }
  const found = violationsOf(schema, request as Record<string, unknown>);
  if (found.length > 0) {
    throw new InvalidArgument(found);
  }
  dropRepeats(schema, request as Record<string, unknown>);
  return request;
}

// The status an error ends a call with; an unexpected error is logged and answered INTERNAL.
function failure(error: unknown, path: string): Partial<ServiceError> {
  if (error instanceof VenueError) {
    return toServiceError(error);
  }
  log.error("unhandled error", {
    method: path,
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return { code: status.INTERNAL, details: "internal error; the service log has details" };
}

function admitted<T extends DescMessage>(
  auth: Auth,
  path: string,
  schema: T,
  metadata: Metadata,
  body: Buffer,
): MessageShape<T> {
  auth.checkMetadata(path, metadata);
  const request = decode(schema, body);
  auth.checkRequest(path, metadata, request);
  return request;
}

function unary(auth: Auth, path: string, method: DescMethod, handler: UnaryHandler) {
  return (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void => {
    void (async () => {
      try {
        const request = admitted(auth, path, method.input, call.metadata, call.request);
        const response = await handler(request as never, { metadata: call.metadata });
        callback(null, toBinary(method.output, response as MessageShape<typeof method.output>));
      } catch (error) {
        callback(failure(error, path));
      }
    })();
  };
}

function sinkOf(
  call: ServerWritableStream<Buffer, Uint8Array>,
  encode: (message: Uint8Array | object) => Uint8Array,
): Sink {
  let headersSent = false;
  const gone = new Promise<void>((resolve) => {
    call.once("cancelled", () => resolve());
    call.once("close", () => resolve());
  });
  return {
    gone,
    get cancelled(): boolean {
      return call.cancelled || call.destroyed;
    },
    sendHeaders(): void {
      if (!headersSent) {
        headersSent = true;
        call.sendMetadata(new Metadata());
      }
    },
    async write(message: Uint8Array | object): Promise<void> {
      headersSent = true;
      if (call.cancelled || call.destroyed) {
        return;
      }
      if (!call.write(encode(message))) {
        await Promise.race([new Promise<void>((resolve) => call.once("drain", () => resolve())), gone]);
      }
    },
  };
}

function stream(auth: Auth, path: string, method: DescMethod, handler: StreamHandler, raw: boolean) {
  const encode = (message: Uint8Array | object): Uint8Array =>
    raw ? (message as Uint8Array) : toBinary(method.output, message as MessageShape<typeof method.output>);
  return (call: ServerWritableStream<Buffer, Uint8Array>): void => {
    void (async () => {
      try {
        const request = admitted(auth, path, method.input, call.metadata, call.request);
        await handler(request as never, sinkOf(call, encode), { metadata: call.metadata });
        if (!call.cancelled) {
          call.end();
        }
      } catch (error) {
        if (!call.cancelled) {
          call.emit("error", failure(error, path));
        }
      }
    })();
  };
}

// Adds every method of `service` to the server; a method without a handler is UNIMPLEMENTED.
export function addService(server: Server, auth: Auth, service: DescService, handlers: Handlers): void {
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    const streaming = method.methodKind === "server_streaming";
    definition[method.name] = {
      path,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      responseDeserialize: identity,
      originalName: method.localName,
    };
    if (streaming) {
      const handler = handlers.stream?.[method.name];
      implementation[method.name] = stream(
        auth,
        path,
        method,
        handler ?? unimplementedStream(path),
        handlers.raw?.has(method.name) ?? false,
      );
    } else {
      const handler = handlers.unary?.[method.name];
      implementation[method.name] = unary(auth, path, method, handler ?? unimplemented(path));
    }
  }
  server.addService(definition as ServiceDefinition, implementation);
}

class Unimplemented extends VenueError {
  constructor(path: string) {
    super(status.UNIMPLEMENTED, `${path.slice(1)} is not implemented`);
  }
}

function unimplemented(path: string): UnaryHandler {
  return () => {
    throw new Unimplemented(path);
  };
}

function unimplementedStream(path: string): StreamHandler {
  return () => Promise.reject(new Unimplemented(path));
}
