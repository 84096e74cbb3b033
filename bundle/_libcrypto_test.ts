import assert from "node:assert/strict";
import fc from "fast-check";
import { createCipheriv } from "node:crypto";
import { libcrypto, openLibCrypto } from "./_libcrypto.ts";

const lib = libcrypto();
// Without a system libcrypto these tests are skipped, except where interop tools are required
// (.ci/run installs openssl, and with it libcrypto.so.3): there a missing library fails them.
const skip = lib === undefined && Deno.env.get("MEMSNAP_REQUIRE_INTEROP") !== "1";

function nodeSeal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): Uint8Array {
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  const ct = c.update(plain);
  c.final();
  const out = new Uint8Array(ct.length + 16);
  out.set(ct);
  out.set(c.getAuthTag(), ct.length);
  return out;
}

Deno.test("openLibCrypto() returns undefined when no library opens", () => {
  assert.equal(openLibCrypto({ paths: ["/nonexistent/libcrypto.so.3"] }), undefined);
  assert.equal(openLibCrypto({ paths: [] }), undefined);
});

Deno.test({
  name: "libcrypto ChaChaPoly seals like node:crypto and opens its own output, at any offset",
  ignore: skip,
  fn: () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 70_000 }),
        fc.nat(40),
        (key, nonce, plain, at) => {
          const c = lib!.chachaPoly(key);
          try {
            const out = new Uint8Array(at + plain.length + 16 + 5);
            const end = c.seal(plain, nonce, out, at);
            assert.equal(end, at + plain.length + 16);
            assert.deepEqual(out.subarray(at, end), nodeSeal(key, nonce, plain));
            const back = new Uint8Array(plain.length + 3);
            assert.ok(c.open(out.subarray(at, end), nonce, back, 3));
            assert.deepEqual(back.subarray(3), plain);
          } finally {
            c.free();
          }
        },
      ),
      { numRuns: 60 },
    );
  },
});

Deno.test({
  name: "libcrypto ChaChaPoly refuses a changed byte, tag or nonce, and a short input",
  ignore: skip,
  fn: () => {
    const key = new Uint8Array(32).fill(3);
    const nonce = new Uint8Array(12);
    const plain = new Uint8Array(1000).map((_, i) => i);
    const c = lib!.chachaPoly(key);
    try {
      const sealed = new Uint8Array(plain.length + 16);
      c.seal(plain, nonce, sealed, 0);
      const out = new Uint8Array(plain.length);
      for (const at of [0, 500, plain.length, plain.length + 15]) {
        const bad = sealed.slice();
        bad[at]! ^= 0x40;
        assert.equal(c.open(bad, nonce, out, 0), false, `byte ${at}`);
      }
      assert.equal(
        c.open(sealed, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), out, 0),
        false,
      );
      assert.equal(c.open(sealed.subarray(0, 15), nonce, out, 0), false);
      assert.ok(c.open(sealed, nonce, out, 0)); // the context recovers after failures
      assert.deepEqual(out, plain);
      assert.throws(() => c.seal(plain, nonce, new Uint8Array(10), 0), RangeError);
      assert.throws(() => c.seal(plain, new Uint8Array(8), sealed, 0), RangeError);
    } finally {
      c.free();
    }
    assert.throws(() => c.seal(plain, nonce, new Uint8Array(2000), 0), /freed/);
    assert.throws(() => lib!.chachaPoly(new Uint8Array(16)), RangeError);
  },
});
