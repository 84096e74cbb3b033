import assert from "node:assert/strict";
import fc from "fast-check";
import { UsageError } from "../errors.ts";
import { ageCipher } from "./age_cipher.ts";
import { ageDecipher } from "./age_decipher.ts";
import { createHash } from "node:crypto";
import { libcrypto } from "./_libcrypto.ts";
import {
  AgeSealer,
  CHUNK_SIZE,
  cryptoConfig,
  decodeRecipient,
  ENC_CHUNK_SIZE,
  encodeHeader,
  PAYLOAD_NONCE_SIZE,
  payloadEncryptor,
  wrapX25519,
} from "./age_format.ts";
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

/** Bytes `(seed * 7 + i * 13 + 1) & 0xff`: a fixed file key or payload nonce. */
function fixedBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 7 + i * 13 + 1) & 0xff;
  return b;
}

// SHA-256 of nonce || STREAM for payload(n), file key fixedBytes(16, 0), payload nonce
// fixedBytes(16, 1), as written by the encryptor of 4d4dc5f (the first native one): the
// STREAM bytes must not change whatever the implementation.
const PINNED: [number, string][] = [
  [0, "14b17f72a21f8c8d78ce435813008d62b41f3ca45865eacb67189607c3234d2d"],
  [1, "5b01ebdf7899db6175043f5e56c0df5485a67ba68ff1fe897d6a9f51d0e13eae"],
  [CHUNK_SIZE - 1, "55274fb913825c97bc497484a6f9ebe8df39cca1597abed116e475927f5e7047"],
  [CHUNK_SIZE, "eb57605764596203bf37cfe812da8f737c2531cf4856c9409b2a32e13fcb92a9"],
  [CHUNK_SIZE + 1, "4314582d5f87cb4c12d990e00c3a66fa0698337b8a3e798b604c09a5848985fa"],
  [3 * CHUNK_SIZE, "908b5c3415a72fc53f1553f537253b52e76d8623b1806422b1e037d8cad4c3a1"],
  [1_000_000, "d386d15d8bbbbf1f55b4b81432a2ee09347a126d2945fd015960b3cd069fd2d9"],
];

Deno.test("payloadEncryptor() writes the pinned STREAM bytes for a fixed file key and nonce", async () => {
  const key = fixedBytes(16, 0);
  const nonce = fixedBytes(16, 1);
  for (const [n, digest] of PINNED) {
    for (const pieces of [[n || 1], [1], [CHUNK_SIZE], [ENC_CHUNK_SIZE + 3, 7], [1 << 20]]) {
      if (n > 70_000 && pieces[0] === 1) continue;
      const out = await pipe(payload(n), payloadEncryptor(new Uint8Array(0), key, nonce), pieces);
      assert.equal(createHash("sha256").update(out).digest("hex"), digest, `size ${n}`);
    }
  }
});

const ENGINES: [string, boolean][] = [
  ["node:crypto", false],
  ...(libcrypto() === undefined ? [] : [["libcrypto", true] as [string, boolean]]),
];
if (libcrypto() === undefined && Deno.env.get("MEMSNAP_REQUIRE_INTEROP") === "1") {
  throw new Error("the system libcrypto (OpenSSL 3) is required here and did not open");
}

for (const [engine, useLib] of ENGINES) {
  Deno.test(`AgeSealer [${engine}] writes the pinned STREAM bytes into one reused buffer`, () => {
    const saved = cryptoConfig.useLib;
    cryptoConfig.useLib = useLib;
    try {
      const key = fixedBytes(16, 0);
      const nonce = fixedBytes(16, 1);
      for (const [n, digest] of PINNED) {
        for (const piece of [n || 1, 7, CHUNK_SIZE, ENC_CHUNK_SIZE + 3, 1 << 20]) {
          if (n > 70_000 && piece === 7) continue;
          const sealer = new AgeSealer(new Uint8Array(0), key, nonce, true);
          const hash = createHash("sha256");
          const buffers = new Set<ArrayBufferLike>();
          const data = payload(n);
          for (let off = 0; off < data.length; off += piece) {
            const out = sealer.update(data.subarray(off, off + piece));
            hash.update(out); // used before the next call overwrites it
            if (out.length > 0) buffers.add(out.buffer);
          }
          const last = sealer.final();
          hash.update(last);
          buffers.add(last.buffer);
          assert.equal(hash.digest("hex"), digest, `size ${n} in pieces of ${piece}`);
          assert.ok(buffers.size <= 2, `${buffers.size} output buffers`); // grown once at most
          assert.throws(() => sealer.update(data), /after final/);
        }
      }
    } finally {
      cryptoConfig.useLib = saved;
    }
  });
}

Deno.test("ageCipher().sealer() output decrypts with ageDecipher() ", async () => {
  const cipher = ageCipher([alice.recipient]);
  const plain = payload(5 * CHUNK_SIZE + 11);
  const sealer = cipher.sealer!();
  const parts: Uint8Array[] = [];
  for (let off = 0; off < plain.length; off += 100_000) {
    parts.push(sealer.update(plain.subarray(off, off + 100_000)).slice());
  }
  parts.push(sealer.final().slice());
  const ct = await new Response(ReadableStream.from(parts)).bytes();
  assert.deepEqual(await pipe(ct, ageDecipher([alice.identity]).decrypt()), plain);
  // dispose() after an error releases the cipher; nothing more can be sealed.
  const broken = cipher.sealer!();
  broken.update(plain.subarray(0, 10));
  broken.dispose();
  assert.throws(() => broken.final(), /twice|after/);
});

Deno.test("payloadEncryptor() output behind a real header decrypts with ageDecipher()", async () => {
  const key = fixedBytes(16, 0);
  const header = encodeHeader([wrapX25519(key, decodeRecipient(alice.recipient)!)], key);
  const plain = payload(3 * CHUNK_SIZE + 5);
  const ct = await pipe(plain, payloadEncryptor(header, key, fixedBytes(16, 1)));
  assert.deepEqual(ct.subarray(0, header.length), header);
  assert.deepEqual(await pipe(ct, ageDecipher([alice.identity]).decrypt()), plain);
});
