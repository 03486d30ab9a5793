// The venue's one error hierarchy, and its gRPC statuses at the server edge.
//
// As the Python services do (trademesh/core/platform/rpc/status.py): INVALID_ARGUMENT carries a
// google.rpc.BadRequest with a field violation per bad field in the status details
// (grpc-status-details-bin), so grpcurl, buf curl and the mesh's clients show which field was
// wrong and why. Anything else that is not one of these errors is INTERNAL, its stack in the log,
// never in the answer.

import { Metadata, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";

export interface FieldViolation {
  field: string;
  description: string;
}

export class VenueError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

export class InvalidArgument extends VenueError {
  constructor(readonly violations: FieldViolation[]) {
    super(status.INVALID_ARGUMENT, violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  }

  static field(field: string, description: string): InvalidArgument {
    return new InvalidArgument([{ field, description }]);
  }
}

/** The base of an error that is one gRPC status and a message. */
export function statusError(code: status): new (message: string) => VenueError {
  return class extends VenueError {
    constructor(message: string) {
      super(code, message);
    }
  };
}

export class NotFound extends statusError(status.NOT_FOUND) {}

export class AlreadyExists extends statusError(status.ALREADY_EXISTS) {}

export class FailedPrecondition extends statusError(status.FAILED_PRECONDITION) {}

export class ResourceExhausted extends statusError(status.RESOURCE_EXHAUSTED) {}

export class Unavailable extends statusError(status.UNAVAILABLE) {}

export class Unauthenticated extends statusError(status.UNAUTHENTICATED) {}

export class PermissionDenied extends statusError(status.PERMISSION_DENIED) {}

// Collects every bad field of a request so the caller sees them all at once.
export class Violations {
  readonly items: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.items.push({ field, description });
  }

  raiseAny(): void {
    if (this.items.length > 0) {
      throw new InvalidArgument(this.items);
    }
  }
}

// How much of a value from a request an error message repeats.
const SHOWN_CHARS = 64;

// A request's value as an error quotes it: its start, and its length when it was longer.
export function shown(value: string, limit = SHOWN_CHARS): string {
  const quoted = (text: string): string => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  return value.length <= limit ? quoted(value) : `${quoted(value.slice(0, limit))}... (${value.length} characters)`;
}

// Whatever the request held, an answer's trailers stay small (grpc refuses trailers over 8-16 KB).
const MAX_VIOLATIONS = 10;
const MAX_TEXT_CHARS = 256;
const MAX_MESSAGE_CHARS = 1024;
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

// The status a handler's error ends its call with.
export function toServiceError(error: VenueError): Partial<ServiceError> {
  if (!(error instanceof InvalidArgument)) {
    return { code: error.code, details: cut(error.message, MAX_MESSAGE_CHARS) };
  }
  const violations = bounded(error.violations);
  const message = cut(violations.map((v) => `${v.field}: ${v.description}`).join("; "), MAX_MESSAGE_CHARS);
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(statusWithBadRequest(error.code, message, violations)));
  return { code: error.code, details: message, metadata };
}

// google.rpc.Status {code = 1, message = 2, details = 3 (Any)} holding a google.rpc.BadRequest
// {field_violations = 1: FieldViolation {field = 1, description = 2}}, by their field numbers.
function statusWithBadRequest(code: number, message: string, violations: FieldViolation[]): Uint8Array {
  const badRequest = new BinaryWriter();
  for (const violation of violations) {
    badRequest
      .uint32((1 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(violation.field);
    badRequest
      .uint32((2 << 3) | 2)
      .string(violation.description)
      .join();
  }
  const writer = new BinaryWriter();
  writer.uint32((1 << 3) | 0).int32(code);
  writer.uint32((2 << 3) | 2).string(message);
  writer.uint32((3 << 3) | 2).fork();
  writer.uint32((1 << 3) | 2).string(BAD_REQUEST_TYPE);
  writer.uint32((2 << 3) | 2).bytes(badRequest.finish());
  writer.join();
  return writer.finish();
}

function bounded(violations: FieldViolation[]): FieldViolation[] {
  const shownItems = violations
    .slice(0, MAX_VIOLATIONS)
    .map((v) => ({ field: cut(v.field, MAX_TEXT_CHARS), description: cut(v.description, MAX_TEXT_CHARS) }));
  if (violations.length > MAX_VIOLATIONS) {
    shownItems.push({ field: "(more)", description: `${violations.length - MAX_VIOLATIONS} more violations` });
  }
  return shownItems;
}

function cut(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 40)}... (${text.length} characters)`;
}
