import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { blake2b } from "./_blake2b.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const abc = new TextEncoder().encode("abc");

Deno.test("blake2b() matches the RFC 7693 and reference vectors", () => {
  assert.equal(
    hex(blake2b(64, abc)),
    "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1" +
      "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
  );
  assert.equal(
    hex(blake2b(32)),
    "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
  );
  assert.equal(
    hex(blake2b(32, abc)),
    "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
  );
});

Deno.test("blake2b() with 64-byte output equals node:crypto blake2b512", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(3), (bytes, cut) => {
      const parts = [bytes.subarray(0, cut * 40), bytes.subarray(cut * 40)];
      assert.equal(
        hex(blake2b(64, ...parts)),
        createHash("blake2b512").update(bytes).digest("hex"),
      );
    }),
    { numRuns: 60 },
  );
  for (const n of [127, 128, 129, 256]) {
    const b = new Uint8Array(n).map((_, i) => i);
    assert.equal(hex(blake2b(64, b)), createHash("blake2b512").update(b).digest("hex"));
  }
});

Deno.test("blake2b() with 32-byte output is not truncated BLAKE2b-512", () => {
  assert.notEqual(hex(blake2b(32, abc)), hex(blake2b(64, abc)).slice(0, 64));
});

Deno.test("blake2b() rejects output lengths outside 1..64", () => {
  assert.throws(() => blake2b(0), RangeError);
  assert.throws(() => blake2b(65), RangeError);
});
