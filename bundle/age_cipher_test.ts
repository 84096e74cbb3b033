import assert from "node:assert/strict";
import fc from "fast-check";
import { UsageError } from "../errors.ts";
import { ageCipher } from "./age_cipher.ts";
import { ageDecipher } from "./age_decipher.ts";
import { CHUNK_SIZE, ENC_CHUNK_SIZE, PAYLOAD_NONCE_SIZE } from "./age_format.ts";
import { generateAgeIdentity, recipientFingerprint } from "./age_keys.ts";

/** Pipes `data` through `t`, fed in pieces of the given sizes (cycled). */
async function pipe(
  data: Uint8Array,
  t: TransformStream<Uint8Array, Uint8Array>,
  pieces: number[] = [data.length || 1],
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.max(1, pieces[i % pieces.length]!);
    parts.push(data.subarray(off, off + n));
    off += n;
  }
  return await new Response(ReadableStream.from(parts).pipeThrough(t)).bytes();
}

function payload(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

const alice = generateAgeIdentity();
const bob = generateAgeIdentity();

Deno.test("ageCipher() round trips at chunk-boundary sizes", async () => {
  for (const n of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE]) {
    const plain = payload(n);
    const ct = await pipe(plain, ageCipher([alice.recipient]).encrypt());
    const chunks = Math.max(1, Math.ceil(n / CHUNK_SIZE));
    const header = ct.length - PAYLOAD_NONCE_SIZE - n - 16 * chunks;
    assert.ok(header > 0 && header < 300, `size ${n}: header ${header}`);
    assert.deepEqual(await pipe(ct, ageDecipher([alice.identity]).decrypt()), plain, `size ${n}`);
  }
});

Deno.test("ageCipher() round trips random sizes however the streams are split", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 * CHUNK_SIZE + 100 }),
      fc.array(fc.integer({ min: 1, max: 2 * ENC_CHUNK_SIZE + 3 }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 2 * ENC_CHUNK_SIZE + 3 }), { minLength: 1, maxLength: 5 }),
      async (n, inPieces, outPieces) => {
        const plain = payload(n);
        const ct = await pipe(plain, ageCipher([alice.recipient]).encrypt(), inPieces);
        const back = await pipe(ct, ageDecipher([alice.identity]).decrypt(), outPieces);
        assert.deepEqual(back, plain);
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("ageCipher() encrypts to several recipients, each of which can decrypt", async () => {
  const carol = generateAgeIdentity();
  const cipher = ageCipher([alice.recipient, bob.recipient, carol.recipient]);
  const plain = payload(70000);
  const ct = await pipe(plain, cipher.encrypt());
  assert.equal(
    (new TextDecoder().decode(ct.subarray(0, 600)).match(/-> X25519 /g) ?? []).length,
    3,
  );
  for (const id of [alice, bob, carol]) {
    assert.deepEqual(await pipe(ct, ageDecipher([id.identity]).decrypt()), plain);
  }
});

Deno.test("ageCipher() draws a fresh file key per encrypt()", async () => {
  const cipher = ageCipher([alice.recipient]);
  const a = await pipe(payload(10), cipher.encrypt());
  const b = await pipe(payload(10), cipher.encrypt());
  assert.notDeepEqual(a, b);
});

Deno.test("ageCipher() records recipient fingerprints in order", () => {
  const cipher = ageCipher([bob.recipient, alice.recipient]);
  assert.equal(cipher.scheme, "age");
  assert.deepEqual(cipher.recipients, [
    recipientFingerprint(bob.recipient),
    recipientFingerprint(alice.recipient),
  ]);
  assert.match(cipher.recipients[0]!, /^[0-9a-f]{16}$/);
});

Deno.test("ageCipher() rejects bad recipients with a UsageError naming them", () => {
  assert.throws(() => ageCipher([]), UsageError);
  for (
    const bad of [
      "age1notakey",
      alice.identity,
      alice.recipient.toUpperCase(),
      alice.recipient.slice(0, -1) + (alice.recipient.endsWith("q") ? "p" : "q"),
      "ssh-ed25519 AAAA",
    ]
  ) {
    assert.throws(
      () => ageCipher([alice.recipient, bad]),
      (e: unknown) => e instanceof UsageError && e.message.includes(`"${bad}"`),
    );
  }
});
