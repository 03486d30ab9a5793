// A module parameter between its wire form (ParamValue) and an input's text, by its ParamSpec.
// Only the form is checked here (an int is a whole number); ranges and choices are the
// detector's to check, so its field violations are what the user sees.
import { create } from "@bufbuild/protobuf";
import { ParamKind, type ParamSpec, type ParamValue, ParamValueSchema } from "../gen/trademesh/patch/v1/patch_pb";

/** A parameter's value as an input shows it ("12", "2.5", "true", "1s"). */
export function paramText(value: ParamValue | undefined): string {
  const v = value?.value;
  if (v === undefined || v.case === undefined) return "";
  return String(v.value);
}

/** The ParamValue an input's text means for `spec`, or a message saying why it means none. */
export function parseParam(spec: ParamSpec, text: string): ParamValue | string {
  const trimmed = text.trim();
  switch (spec.kind) {
    case ParamKind.INT:
      if (!/^-?\d+$/.test(trimmed)) return `${spec.name}: ${JSON.stringify(trimmed)} is not a whole number`;
      return create(ParamValueSchema, { value: { case: "intValue", value: BigInt(trimmed) } });
    case ParamKind.FLOAT: {
      const number = Number(trimmed);
      if (trimmed === "" || !Number.isFinite(number)) return `${spec.name}: ${JSON.stringify(trimmed)} is not a number`;
      return create(ParamValueSchema, { value: { case: "floatValue", value: number } });
    }
    case ParamKind.BOOL:
      return create(ParamValueSchema, { value: { case: "boolValue", value: trimmed === "true" } });
    default:
      return create(ParamValueSchema, { value: { case: "textValue", value: text } });
  }
}

/** "1 to 10000", "≥ 0", "" : the bounds of a numeric parameter, for the input's hint. */
export function bounds(spec: ParamSpec): string {
  const { minimum, maximum } = spec;
  if (minimum !== undefined && maximum !== undefined) return `${minimum} to ${maximum}`;
  if (minimum !== undefined) return `≥ ${minimum}`;
  if (maximum !== undefined) return `≤ ${maximum}`;
  return "";
}
