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
