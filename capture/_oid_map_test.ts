import assert from "node:assert/strict";
import fc from "fast-check";
import { OidMap } from "./_oid_map.ts";

const oid = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("")
);

Deno.test("OidMap: same answers as a Map of strings, through growth", () => {
  fc.assert(
    fc.property(
      // Few distinct ids, so that keys repeat (updates) and values often equal their key.
      fc.array(fc.tuple(fc.nat(3000), fc.nat(3000), fc.boolean()), { maxLength: 4000 }),
      fc.array(oid, { minLength: 3001, maxLength: 3001 }),
      (ops, ids) => {
        const m = new OidMap();
        const ref = new Map<string, string>();
        for (const [k, v, same] of ops) {
          const key = ids[k]!;
          const to = same ? key : ids[v]!;
          m.set(key, to);
          ref.set(key, to);
        }
        assert.equal(m.size, ref.size);
        for (const id of ids) {
          assert.equal(m.get(id), ref.get(id));
          assert.equal(m.has(id), ref.has(id));
        }
        assert.deepEqual([...m].sort(), [...ref].sort());
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("OidMap: ids sharing their first bytes (one probe chain) stay apart", () => {
  const m = new OidMap();
  const ids = Array.from({ length: 5000 }, (_, i) => `00000000${i.toString(16).padStart(32, "0")}`);
  ids.forEach((id, i) => m.set(id, i % 3 === 0 ? id : ids[(i + 1) % ids.length]!));
  ids.forEach((id, i) => assert.equal(m.get(id), i % 3 === 0 ? id : ids[(i + 1) % ids.length]));
  assert.equal(m.get("00000000" + "f".repeat(32)), undefined);
  assert.equal(m.size, 5000);
});

Deno.test("OidMap: refuses what is not a lowercase 40-digit hex id", () => {
  const m = new OidMap();
  for (const bad of ["", "abc", "A".repeat(40), "g".repeat(40), "é".repeat(40), "0".repeat(41)]) {
    assert.throws(() => m.set(bad, "0".repeat(40)), TypeError);
    assert.throws(() => m.get(bad), TypeError);
  }
  assert.throws(() => m.set("0".repeat(40), "xyz"), TypeError);
  assert.equal(m.size, 0);
  assert.equal(m.get("0".repeat(40)), undefined);
});
