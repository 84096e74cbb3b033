import assert from "node:assert/strict";
import fc from "fast-check";
import { jsonPieces } from "./_output.ts";

Deno.test("jsonPieces() joins to exactly JSON.stringify, long arrays and all", () => {
  // Long arrays (past the 256 that are split), one nested in another, beside values JSON
  // leaves out (undefined, functions and symbols in objects; undefined in arrays).
  const small = fc.jsonValue({ maxDepth: 1 });
  const long = (item: fc.Arbitrary<unknown>) => fc.array(item, { minLength: 250, maxLength: 300 });
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    long(fc.oneof(small, fc.constant(undefined))),
    long(fc.oneof({ weight: 20, arbitrary: small }, { weight: 1, arbitrary: long(small) })),
    fc.dictionary(fc.string(), fc.oneof(small, long(small)), { maxKeys: 4 }),
    fc.record({
      list: long(fc.record({ target: fc.string(), action: small })),
      gone: fc.constantFrom(undefined, () => 1, Symbol("s")),
      kept: fc.constantFrom(null, 0, "x", [undefined]),
    }),
  );
  fc.assert(
    fc.property(value, (v) => {
      assert.equal([...jsonPieces(v)].join(""), JSON.stringify(v));
    }),
    { numRuns: 100 },
  );
});

Deno.test("jsonPieces() hands a long array out element by element", () => {
  const plan = Array.from({ length: 10_000 }, (_, i) => ({ target: `/m/n${i}.md`, action: "add" }));
  const pieces = [...jsonPieces({ id: "x", plan, aside: [] })];
  assert.ok(pieces.length > 10_000);
  assert.ok(Math.max(...pieces.map((p) => p.length)) < 100);
  // A Date (toJSON) and a class instance are left to JSON.stringify whole.
  const d = new Date(0);
  assert.deepEqual([...jsonPieces({ d })].join(""), JSON.stringify({ d }));
  class P {
    a = 1;
  }
  assert.deepEqual([...jsonPieces([new P()])].join(""), JSON.stringify([new P()]));
});
