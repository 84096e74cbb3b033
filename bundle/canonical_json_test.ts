import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalJson } from "./canonical_json.ts";

Deno.test("canonicalJson() sorts keys at every depth and writes no spaces", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: null, y: true }], c: "x y" } }),
    '{"a":{"c":"x y","d":[3,{"y":true,"z":null}]},"b":1}',
  );
});

Deno.test("canonicalJson() omits undefined properties and refuses non-JSON values", () => {
  assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  assert.throws(() => canonicalJson(NaN), TypeError);
  assert.throws(() => canonicalJson([undefined]), TypeError);
  assert.throws(() => canonicalJson(1n), TypeError);
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  assert.throws(() => canonicalJson(cyc), /cycle/);
});

Deno.test("canonicalJson() parses back to an equal value and is a fixed point (property)", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = canonicalJson(v);
      const back = JSON.parse(text);
      assert.deepEqual(back, JSON.parse(JSON.stringify(v)));
      assert.equal(canonicalJson(back), text);
    }),
    { numRuns: 300 },
  );
});

/** The definition, written plainly: keys sorted by UTF-16 code units at every depth. */
function reference(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map(reference).join(",") + "]";
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return "{" + Object.keys(o).filter((k) =>
      o[k] !== undefined
    ).sort().map((k) => JSON.stringify(k) + ":" + reference(o[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

Deno.test("canonicalJson() equals the plain definition, integer-like keys included (property)", () => {
  const key = fc.oneof(
    fc.string(),
    fc.nat().map(String),
    fc.constantFrom("0", "01", "10", "9", "-1", "4294967295", "1e3", "é", "\u{1f9e0}", "Z", "a"),
  );
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: "small" },
      fc.jsonValue({ maxDepth: 1 }),
      fc.array(tie("v"), { maxLength: 4 }),
      fc.dictionary(key, tie("v"), { maxKeys: 6 }),
    ),
  })).v;
  fc.assert(fc.property(value, (v) => assert.equal(canonicalJson(v), reference(v))), {
    numRuns: 500,
  });
  assert.equal(
    canonicalJson({ 10: 1, 9: 2, b: { 2: 0, 1: 0 } }),
    '{"10":1,"9":2,"b":{"1":0,"2":0}}',
  );
});
