// The field violations of a failed call, from its google.rpc.Status details
// (grpc-status-details-bin): google.rpc.BadRequest for INVALID_ARGUMENT (field, description) and
// google.rpc.PreconditionFailure for FAILED_PRECONDITION (subject, description). Studio has no
// generated code for google.rpc, so the two small messages are read here with the wire reader.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";

export interface Violation {
  /** The request field (BadRequest) or the subject (PreconditionFailure), e.g. "params.period". */
  field: string;
  description: string;
}

const BAD_REQUEST = "google.rpc.BadRequest";
const PRECONDITION_FAILURE = "google.rpc.PreconditionFailure";

/** The string fields of one embedded message, by field number. */
function strings(bytes: Uint8Array): Map<number, string> {
  const reader = new BinaryReader(bytes);
  const found = new Map<number, string>();
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited) found.set(number, reader.string());
    else reader.skip(wireType, number);
  }
  return found;
}

/** The embedded messages of `field` (1: field_violations / violations) of a detail. */
function repeated(bytes: Uint8Array, field: number): Uint8Array[] {
  const reader = new BinaryReader(bytes);
  const items: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    if (number === field && wireType === WireType.LengthDelimited) items.push(reader.bytes());
    else reader.skip(wireType, number);
  }
  return items;
}

function decode(type: string, value: Uint8Array): Violation[] {
  if (type === BAD_REQUEST) {
    return repeated(value, 1).map((item) => {
      const fields = strings(item);
      return { field: fields.get(1) ?? "", description: fields.get(2) ?? "" };
    });
  }
  if (type === PRECONDITION_FAILURE) {
    return repeated(value, 1).map((item) => {
      const fields = strings(item);
      return { field: fields.get(2) ?? "", description: fields.get(3) ?? "" };
    });
  }
  return [];
}

/** Every field violation the error carries; none when it is not a ConnectError or has none. */
export function violations(error: unknown): Violation[] {
  if (!(error instanceof ConnectError)) return [];
  const found: Violation[] = [];
  for (const detail of error.details) {
    if (!("type" in detail) || !(detail.value instanceof Uint8Array)) continue;
    try {
      found.push(...decode(detail.type, detail.value));
    } catch {
      // a detail that does not parse is left out; the status message still says what failed
    }
  }
  return found;
}
