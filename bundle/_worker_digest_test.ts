import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { libWorkerSha256, nodeWorkerSha256 } from "./_worker_digest.ts";

Deno.test("the workers' SHA-256, by libcrypto or node:crypto, is node:crypto's (property)", async () => {
  const lib = libWorkerSha256();
  assert.ok(lib !== undefined, "libcrypto.so.3 (the CI installs openssl)");
  const node = await nodeWorkerSha256();
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 4000 }), { maxLength: 8 }), (parts) => {
      const h = createHash("sha256");
      for (const p of parts) h.update(p);
      const want = h.digest("hex");
      for (const [whole, across] of [lib, node]) {
        // Both hashers of a pair at once, interleaved, as a worker uses them.
        const out = new Uint8Array(70);
        whole.begin();
        across.begin();
        for (const p of parts) {
          whole.update(p);
          across.update(p);
        }
        whole.end(out, 3);
        across.end(out, 37);
        assert.equal(Buffer.from(out.subarray(3, 35)).toString("hex"), want);
        assert.equal(Buffer.from(out.subarray(37, 69)).toString("hex"), want);
      }
    }),
    { numRuns: 80 },
  );
});
