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
  // Fast path: the native serializer, handed objects with their keys in sorted order. It
  // cannot order integer-like keys (JavaScript enumerates those first, numerically), so an
  // object with one falls back to the writer below, as does anything it would not refuse.
  // A cycle makes the native serializer throw its own error: the writer names it.
  try {
    return JSON.stringify(value, sortedReplacer);
  } catch {
    return write(value, new Set());
  }
}

/** Thrown by {@linkcode sortedReplacer} to take the general path. */
const SLOW_PATH = new Error("canonical JSON: general path");

const INDEX_KEY = /^(0|[1-9][0-9]*)$/;

function sortedReplacer(this: unknown, _key: string, v: unknown): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      if (!Number.isFinite(v)) throw SLOW_PATH;
      return v;
    case "object": {
      if (v === null) return v;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (v[i] === undefined) throw SLOW_PATH;
        return v;
      }
      if ("toJSON" in v) throw SLOW_PATH;
      const keys = Object.keys(v);
      let sorted = true;
      for (let i = 0; i < keys.length; i++) {
        if (INDEX_KEY.test(keys[i]!)) throw SLOW_PATH;
        if (i > 0 && keys[i - 1]! > keys[i]!) sorted = false;
      }
      if (sorted) return v;
      const out: Record<string, unknown> = {};
      for (const k of keys.sort()) out[k] = (v as Record<string, unknown>)[k];
      return out;
    }
    case "undefined":
      // An object property: omitted, as by JSON.stringify. Anything else is an error.
      if (this !== null && typeof this === "object" && !Array.isArray(this)) return v;
      throw SLOW_PATH;
    default:
      throw SLOW_PATH;
  }
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
