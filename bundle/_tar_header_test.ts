import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import {
  encodeHeader,
  encodeHeaderInto,
  type HeaderFields,
  headerLength,
  MAX_USTAR_SIZE,
} from "./_tar_header.ts";

const fields: fc.Arbitrary<HeaderFields> = fc.record({
  path: fc.oneof(
    fc.stringMatching(/^[a-z0-9/._-]{1,100}$/),
    fc.string({ minLength: 1, maxLength: 140 }), // long or not ASCII: pax
    fc.stringMatching(/^[a-z]{101,130}$/),
  ),
  size: fc.oneof(
    fc.integer({ min: 0, max: 1 << 30 }),
    fc.constantFrom(0, MAX_USTAR_SIZE, MAX_USTAR_SIZE + 1, 2 ** 40),
  ),
  mode: fc.constantFrom(0o644, 0o755, 0o600, 0o777, 0),
  mtime: fc.integer({ min: 0, max: 8 ** 11 - 1 }),
});

Deno.test("encodeHeaderInto() writes encodeHeader()'s bytes in place, and headerLength() is their length", () => {
  fc.assert(
    fc.property(fields, fc.integer({ min: 0, max: 1000 }), (f, off) => {
      const want = encodeHeader(f);
      assertEquals(headerLength(f.path, f.size), want.length);
      const b = new Uint8Array(off + want.length + 600).fill(0xaa);
      assertEquals(encodeHeaderInto(b, off, f), want.length);
      assertEquals(b.subarray(off, off + want.length), want);
      // Nothing outside is touched.
      assertEquals(b.subarray(0, off).every((c) => c === 0xaa), true);
      assertEquals(b.subarray(off + want.length).every((c) => c === 0xaa), true);
    }),
    { numRuns: 500 },
  );
});

Deno.test("encodeHeaderInto() refuses what encodeHeader() refuses", () => {
  for (const f of [{ path: "a", size: 1, mode: 0o644, mtime: 8 ** 11 }]) {
    let a: unknown, b: unknown;
    try {
      encodeHeader(f);
    } catch (e) {
      a = (e as Error).message;
    }
    try {
      encodeHeaderInto(new Uint8Array(2048), 0, f);
    } catch (e) {
      b = (e as Error).message;
    }
    assertEquals(typeof a, "string");
    assertEquals(b, a);
  }
});
