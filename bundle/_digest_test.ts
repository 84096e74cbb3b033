import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  builtinDigestEngine,
  digestEngine,
  digestHex,
  digestInto,
  type DigestPart,
  openDigestLib,
  sha256Hex,
  streamSha256,
} from "./_digest.ts";

const node = (algorithm: string, parts: DigestPart[]): string => {
  const h = createHash(algorithm);
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

Deno.test("digestEngine() moves to the system libcrypto after the first digests", () => {
  assert.ok(openDigestLib() !== undefined, "libcrypto.so.3 (the CI installs openssl)");
  const names = new Set<string>();
  for (let i = 0; i < 16_400; i++) names.add(digestEngine().name);
  assert.ok(names.has("node:crypto"), [...names].join());
  assert.notEqual(digestEngine().name, "node:crypto");
  assert.equal(openDigestLib(["/nonexistent/libcrypto.so"]), undefined);
});

Deno.test("digestEngine() uses libcrypto at once when a streamed digest has opened it", async () => {
  // A module instance of its own: the engine choice is module state.
  const fresh = new URL(`./_digest.ts?instance=${crypto.randomUUID()}`, import.meta.url).href;
  const m: typeof import("./_digest.ts") = await import(fresh);
  assert.equal(m.digestEngine().name, "node:crypto");
  const h = m.streamSha256(true);
  await h.update(new Uint8Array([1, 2, 3]));
  await h.digest();
  assert.notEqual(m.digestEngine().name, "node:crypto");
  assert.equal(
    m.digestHex("sha256", "abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("digestHex() and digestInto() give node:crypto's digests, any parts (property)", () => {
  const part = fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.string({ maxLength: 300 }));
  fc.assert(
    fc.property(fc.constantFrom("sha256" as const, "sha1" as const), fc.array(part), (a, parts) => {
      const want = node(a, parts);
      assert.equal(digestHex(a, ...parts), want);
      const out = new Uint8Array(40);
      digestInto(a, out, 3, ...parts);
      assert.equal(Buffer.from(out.subarray(3, 3 + want.length / 2)).toString("hex"), want);
      const viaNode = new Uint8Array(32);
      builtinDigestEngine.digest(a, parts, viaNode);
      assert.equal(Buffer.from(viaNode.subarray(0, want.length / 2)).toString("hex"), want);
    }),
    { numRuns: 300 },
  );
});

Deno.test("sha256Hex() hashes a view, not its whole buffer, and a long text part", () => {
  const buf = new Uint8Array(1 << 20).map((_, i) => i * 7);
  const view = buf.subarray(12345, 12345 + 70_000);
  assert.equal(sha256Hex(view), node("sha256", [view]));
  assert.equal(sha256Hex(new Uint8Array(0)), node("sha256", [new Uint8Array(0)]));
  const text = "é".repeat(5000); // 10,000 bytes: the scratch buffer grows
  assert.equal(digestHex("sha1", "x", text), node("sha1", ["x", text]));
});

Deno.test("streamSha256() gives node:crypto's digest on or off the thread, any pieces (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 12 }),
      async (parts) => {
        const want = node("sha256", parts);
        for (const offThread of [false, true]) {
          const d = streamSha256(offThread);
          for (const p of parts) {
            const pending = d.update(p);
            if (pending !== undefined) await pending;
          }
          assert.equal(Buffer.from(await d.digest()).toString("hex"), want);
          await d.dispose(); // a no-op once digested
          assert.throws(() => d.update(new Uint8Array(1)), /ended/);
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("streamSha256(true) hashes on a native thread, and chains updates not awaited", async () => {
  const d = streamSha256(true);
  const a = new Uint8Array(3 << 20).fill(1);
  const b = new Uint8Array(1 << 20).fill(2);
  const p1 = d.update(a);
  assert.ok(p1 instanceof Promise, "libcrypto.so.3 (the CI installs openssl)");
  const p2 = d.update(b); // after a, though not awaited
  await Promise.all([p1, p2]);
  assert.equal(Buffer.from(await d.digest()).toString("hex"), node("sha256", [a, b]));
  // Disposed with an update in flight: the context is freed once the call has returned.
  const e = streamSha256(true);
  e.update(a);
  await e.dispose();
  await assert.rejects(e.digest(), /ended/);
});
