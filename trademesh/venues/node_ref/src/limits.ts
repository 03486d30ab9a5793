// What every request is held to once decoded, whatever its type (the Python services' edge:
// trademesh/core/platform/rpc/limits.py, storable.py, repeats.py): every string at most MAX_STRING_CHARS
// characters and free of NUL, every list at most MAX_ITEMS values, nesting at most MAX_DEPTH deep;
// a request over any is INVALID_ARGUMENT naming the field. Then each repeated string or enum keeps
// each value's first occurrence only: a list of symbols or channels is a set, and a value named
// twice asks for nothing more.

import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { MAX_DEPTH, MAX_ITEMS, MAX_STRING_CHARS } from "./config.js";
import type { FieldViolation } from "./errors.js";

type Fields = Record<string, unknown>;

function valueOf(field: DescField, message: Fields): unknown {
  if (field.oneof !== undefined) {
    const chosen = message[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
    return chosen?.case === field.localName ? chosen.value : undefined;
  }
  return message[field.localName];
}

function stringViolation(text: string, where: string): FieldViolation | null {
  if (text.length > MAX_STRING_CHARS && [...text].length > MAX_STRING_CHARS) {
    return { field: where, description: `is ${[...text].length} characters; at most ${MAX_STRING_CHARS}` };
  }
  const nul = text.indexOf("\u0000");
  if (nul >= 0) {
    return { field: where, description: `holds a NUL character (U+0000) at index ${nul}: text cannot hold one` };
  }
  return null;
}

export function violationsOf(schema: DescMessage, message: Fields, path = "", depth = 0): FieldViolation[] {
  if (depth > MAX_DEPTH) {
    return [{ field: path === "" ? "(request body)" : path, description: `nests deeper than ${MAX_DEPTH} messages` }];
  }
  const found: FieldViolation[] = [];
  for (const field of schema.fields) {
    const where = path === "" ? field.name : `${path}.${field.name}`;
    const value = valueOf(field, message);
    if (value === undefined) {
      continue;
    }
    switch (field.fieldKind) {
      case "scalar": {
        const bad = field.scalar === ScalarType.STRING ? stringViolation(value as string, where) : null;
        if (bad !== null) {
          found.push(bad);
        }
        break;
      }
      case "message":
        found.push(...violationsOf(field.message, value as Fields, where, depth + 1));
        break;
      case "list": {
        const items = value as unknown[];
        if (items.length > MAX_ITEMS) {
          found.push({ field: where, description: `holds ${items.length} values; at most ${MAX_ITEMS}` });
          break;
        }
        items.forEach((item, index) => {
          if (field.listKind === "message") {
            found.push(...violationsOf(field.message, item as Fields, `${where}[${index}]`, depth + 1));
          } else if (field.listKind === "scalar" && field.scalar === ScalarType.STRING) {
            const bad = stringViolation(item as string, `${where}[${index}]`);
            if (bad !== null) {
              found.push(bad);
            }
          }
        });
        break;
      }
      case "map": {
        const entries = Object.entries(value as Fields);
        if (entries.length > MAX_ITEMS) {
          found.push({ field: where, description: `holds ${entries.length} values; at most ${MAX_ITEMS}` });
        }
        break;
      }
      default:
        break;
    }
  }
  return found;
}

// Drops every repeat in the message's repeated string and enum fields (nested ones too).
export function dropRepeats(schema: DescMessage, message: Fields): void {
  for (const field of schema.fields) {
    const value = valueOf(field, message);
    if (value === undefined) {
      continue;
    }
    if (field.fieldKind === "message") {
      dropRepeats(field.message, value as Fields);
    } else if (field.fieldKind === "list") {
      const items = value as unknown[];
      if (field.listKind === "message") {
        items.forEach((item) => dropRepeats(field.message, item as Fields));
      } else if ((field.listKind === "enum" || field.scalar === ScalarType.STRING) && items.length > 1) {
        const unique = [...new Set(items)];
        items.splice(0, items.length, ...unique);
      }
    }
  }
}
