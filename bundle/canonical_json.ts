/**
 * Canonical JSON.
 *
 * @module
 */

/**
 * Serializes a value as canonical JSON: object keys sorted (by UTF-16 code units, as RFC 8785),
 * no whitespace, numbers and strings as `JSON.stringify` writes them. Object properties whose
 * value is `undefined` are omitted, as `JSON.stringify` does. The result is deterministic and
 * parses back to an equal value.
 *
 * @param value A JSON-compatible value.
 * @returns The canonical JSON text (encode as UTF-8 for bytes).
 * @throws {TypeError} On a non-finite number, bigint, function, symbol, `undefined` outside an
 * object property, or a cycle.
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(canonicalJson({ b: [1, "é"], a: null }), '{"a":null,"b":[1,"é"]}');
 * ```
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, seen: Set<object>): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot write canonical JSON: ${value} is not a finite number`);
      }
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (seen.has(value)) {
        throw new TypeError("Cannot write canonical JSON: the value has a cycle");
      }
      seen.add(value);
      let out: string;
      if (Array.isArray(value)) {
        out = "[" + value.map((v) => write(v, seen)).join(",") + "]";
      } else {
        const obj = value as Record<string, unknown>;
        const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
        out = "{" + keys.map((k) => JSON.stringify(k) + ":" + write(obj[k], seen)).join(",") + "}";
      }
      seen.delete(value);
      return out;
    }
    default:
      throw new TypeError(`Cannot write canonical JSON: a ${typeof value} is not JSON`);
  }
}
