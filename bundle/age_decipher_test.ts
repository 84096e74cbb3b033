import assert from "node:assert/strict";
import { createCipheriv, randomBytes } from "node:crypto";
import { CorruptBundleError, RefusedError, UsageError, VerificationError } from "../errors.ts";
import { ageCipher } from "./age_cipher.ts";
import { ageDecipher } from "./age_decipher.ts";
import {
  CHUNK_SIZE,
  concat,
  cryptoConfig,
  decodeRecipient,
  ENC_CHUNK_SIZE,
  encodeHeader,
  hkdf,
  incrementNonce,
  type Stanza,
  wrapX25519,
} from "./age_format.ts";
import { generateAgeIdentity } from "./age_keys.ts";

async function pipe(
  data: Uint8Array,
  t: TransformStream<Uint8Array, Uint8Array>,
  piece = data.length || 1,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += piece) parts.push(data.subarray(off, off + piece));
  return await new Response(ReadableStream.from(parts).pipeThrough(t)).bytes();
}

const alice = generateAgeIdentity();
const bob = generateAgeIdentity();
const enc = new TextEncoder();
const plain = new Uint8Array(3 * CHUNK_SIZE + 5).map((_, i) => i & 0xff); // 4 chunks
const ct = await pipe(plain, ageCipher([alice.recipient]).encrypt());
const headerEnd = new TextDecoder("latin1").decode(ct.subarray(0, 400)).indexOf("\n---") + 49;
const payloadStart = headerEnd + 16;

function decrypt(bytes: Uint8Array, ids = [alice.identity], piece?: number) {
  return pipe(bytes, ageDecipher(ids).decrypt(), piece);
}

async function rejectsCorrupt(bytes: Uint8Array, rule: string): Promise<void> {
  await assert.rejects(decrypt(bytes), (e: unknown) => {
    assert.ok(e instanceof CorruptBundleError, String(e));
    assert.ok(e instanceof VerificationError);
    assert.equal(e.rule, rule, e.message);
    assert.match(e.message, /^Cannot decrypt the payload: /);
    return true;
  });
}

function flip(bytes: Uint8Array, at: number, mask = 1): Uint8Array {
  const c = bytes.slice();
  c[at]! ^= mask;
  return c;
}

/** Builds an age file with hand-chosen STREAM chunks, for non-canonical streams. */
function craft(
  chunks: { plain: Uint8Array; last: boolean }[],
  extraStanzas: Stanza[] = [],
): Uint8Array {
  const fileKey = randomBytes(16);
  const header = encodeHeader(
    [...extraStanzas, wrapX25519(fileKey, decodeRecipient(alice.recipient)!)],
    fileKey,
  );
  const nonce16 = randomBytes(16);
  const key = hkdf(fileKey, nonce16, "payload");
  const nonce = new Uint8Array(12);
  const parts: Uint8Array[] = [header, nonce16];
  for (const c of chunks) {
    nonce[11] = c.last ? 1 : 0;
    const ch = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    parts.push(ch.update(c.plain), ch.final(), ch.getAuthTag());
    incrementNonce(nonce);
  }
  return concat(...parts);
}

Deno.test("ageDecipher() decrypts input fed one byte at a time through the header", async () => {
  const small = await pipe(enc.encode("hello"), ageCipher([alice.recipient]).encrypt());
  assert.equal(new TextDecoder().decode(await decrypt(small, [alice.identity], 1)), "hello");
  assert.deepEqual(await decrypt(ct, [alice.identity], 7), plain);
});

Deno.test("ageDecipher() tries every identity against every stanza", async () => {
  const both = await pipe(plain, ageCipher([bob.recipient, alice.recipient]).encrypt());
  const carol = generateAgeIdentity();
  assert.deepEqual(await decrypt(both, [carol.identity, alice.identity]), plain);
});

Deno.test("ageDecipher() refuses when no identity matches", async () => {
  await assert.rejects(
    decrypt(ct, [bob.identity]),
    (e: unknown) =>
      e instanceof RefusedError &&
      e.message === "Cannot decrypt the payload: no identity matches its recipients",
  );
});

Deno.test("ageDecipher() rejects malformed identities without echoing them", () => {
  assert.throws(() => ageDecipher([]), UsageError);
  assert.throws(
    () => ageDecipher([alice.identity, alice.recipient]),
    (e: unknown) =>
      e instanceof UsageError && e.message.includes("#2") &&
      !e.message.includes(alice.recipient),
  );
  assert.throws(() => ageDecipher([alice.identity.toLowerCase()]), UsageError);
});

Deno.test("ageDecipher() detects a tampered header MAC", async () => {
  const macAt = headerEnd - 10;
  const c = ct.slice();
  c[macAt] = c[macAt] === 0x41 ? 0x42 : 0x41; // another base64 letter
  await rejectsCorrupt(c, "age_header_mac");
});

Deno.test("ageDecipher() detects a header changed under a valid stanza", async () => {
  // Insert an unknown stanza: the file key still unwraps, but the MAC no longer matches.
  const text = new TextDecoder("latin1").decode(ct.subarray(0, headerEnd));
  const tampered = text.replace("\n-> X25519", "\n-> grease x\nAAAA\n-> X25519");
  await rejectsCorrupt(concat(enc.encode(tampered), ct.subarray(headerEnd)), "age_header_mac");
});

Deno.test("ageDecipher() ignores unknown stanzas covered by the MAC", async () => {
  const grease: Stanza = { type: "grease-ab", args: ["x"], body: new Uint8Array(70) };
  const file = craft([{ plain: enc.encode("ok"), last: true }], [grease]);
  assert.equal(new TextDecoder().decode(await decrypt(file)), "ok");
});

Deno.test("ageDecipher() rejects malformed headers", async () => {
  const text = new TextDecoder("latin1").decode(ct.subarray(0, headerEnd));
  const rest = ct.subarray(headerEnd);
  const lines = text.split("\n");
  const variants: [string, string][] = [
    ["version", text.replace("age-encryption.org/v1", "age-encryption.org/v2")],
    ["no stanza", [lines[0], lines[3]].join("\n") + "\n"],
    ["non-canonical body", text.replace(lines[2]!, lines[2]!.slice(0, -1) + "B")],
    ["padded body", text.replace(lines[2]!, lines[2]! + "=")],
    ["double space", text.replace("-> X25519 ", "-> X25519  ")],
    ["missing body", [lines[0], lines[1], lines[3]].join("\n") + "\n"],
    ["bad share", text.replace(lines[1]!, "-> X25519 AAAA")],
    ["long body line", text.replace(lines[2]!, "A".repeat(65))],
    ["armored", "-----BEGIN AGE ENCRYPTED FILE-----\n"],
    ["control byte", text.replace("-> X25519", "-> X2\x015519")],
  ];
  for (const [name, h] of variants) {
    await assert.rejects(
      decrypt(concat(enc.encode(h), rest)),
      (e: unknown) => e instanceof CorruptBundleError && e.rule === "age_header",
      name,
    );
  }
  await rejectsCorrupt(enc.encode("hello world, not age\n"), "age_header");
});

Deno.test("ageDecipher() detects a tampered chunk, nonce or reordered chunks", async () => {
  await rejectsCorrupt(flip(ct, payloadStart + ENC_CHUNK_SIZE + 100), "age_chunk");
  await rejectsCorrupt(flip(ct, payloadStart + 2 * ENC_CHUNK_SIZE - 1), "age_chunk"); // a tag
  await rejectsCorrupt(flip(ct, ct.length - 1), "age_chunk"); // the last tag
  await rejectsCorrupt(flip(ct, headerEnd + 3), "age_chunk"); // payload nonce
  const swapped = concat(
    ct.subarray(0, payloadStart),
    ct.subarray(payloadStart + ENC_CHUNK_SIZE, payloadStart + 2 * ENC_CHUNK_SIZE),
    ct.subarray(payloadStart, payloadStart + ENC_CHUNK_SIZE),
    ct.subarray(payloadStart + 2 * ENC_CHUNK_SIZE),
  );
  await rejectsCorrupt(swapped, "age_chunk");
});

Deno.test("ageDecipher() detects truncation anywhere", async () => {
  await rejectsCorrupt(ct.subarray(0, payloadStart + 2 * ENC_CHUNK_SIZE), "age_truncated");
  await rejectsCorrupt(ct.subarray(0, payloadStart + ENC_CHUNK_SIZE + 77), "age_chunk");
  await rejectsCorrupt(ct.subarray(0, payloadStart + 5), "age_truncated");
  await rejectsCorrupt(ct.subarray(0, payloadStart), "age_truncated");
  await rejectsCorrupt(ct.subarray(0, headerEnd + 7), "age_truncated");
  await rejectsCorrupt(ct.subarray(0, headerEnd - 5), "age_truncated");
  await rejectsCorrupt(ct.subarray(0, 30), "age_truncated");
  await rejectsCorrupt(new Uint8Array(0), "age_truncated");
});

Deno.test("ageDecipher() rejects data after the final chunk", async () => {
  const full = await pipe(new Uint8Array(2 * CHUNK_SIZE), ageCipher([alice.recipient]).encrypt());
  await rejectsCorrupt(concat(full, new Uint8Array(20)), "age_trailing_data");
  await rejectsCorrupt(concat(ct, new Uint8Array(1)), "age_chunk");
  // A whole extra chunk after a final one.
  const file = craft([
    { plain: new Uint8Array(CHUNK_SIZE), last: true },
    { plain: enc.encode("extra"), last: true },
  ]);
  await rejectsCorrupt(file, "age_trailing_data");
});

Deno.test("ageDecipher() enforces the STREAM final-chunk rules", async () => {
  // An empty final chunk is only valid for an empty payload.
  assert.equal((await decrypt(craft([{ plain: new Uint8Array(0), last: true }]))).length, 0);
  await rejectsCorrupt(
    craft([
      { plain: new Uint8Array(CHUNK_SIZE), last: false },
      { plain: new Uint8Array(0), last: true },
    ]),
    "age_chunk",
  );
  // A short chunk must be the last one.
  await rejectsCorrupt(
    craft([{ plain: enc.encode("short"), last: false }, { plain: enc.encode("x"), last: true }]),
    "age_chunk",
  );
  // The final chunk must carry the last flag.
  await rejectsCorrupt(craft([{ plain: enc.encode("x"), last: false }]), "age_chunk");
});

Deno.test("ageDecipher() decrypts passphrase (scrypt) files from age-encryption (npm)", async () => {
  const npmAge = await import("age-encryption");
  const e = new npmAge.Encrypter();
  e.setPassphrase("hunter2");
  e.setScryptWorkFactor(10);
  const file = await e.encrypt(plain);
  assert.deepEqual(await pipe(file, ageDecipher([], { passphrase: "hunter2" }).decrypt()), plain);
  await assert.rejects(
    pipe(file, ageDecipher([], { passphrase: "hunter3" }).decrypt()),
    (err: unknown) => err instanceof RefusedError && /wrong passphrase/.test(err.message),
  );
  await assert.rejects(
    pipe(file, ageDecipher([], { passphrase: "hunter2", maxScryptWorkFactor: 9 }).decrypt()),
    (err: unknown) => err instanceof RefusedError && /work factor 10 exceeds/.test(err.message),
  );
  // A passphrase is not tried on recipient files, nor identities on passphrase files.
  await assert.rejects(
    pipe(ct, ageDecipher([], { passphrase: "hunter2" }).decrypt()),
    RefusedError,
  );
  await assert.rejects(decrypt(file), RefusedError);
  // An scrypt stanza next to another stanza is malformed.
  const text = new TextDecoder("latin1").decode(file);
  const macAt = text.indexOf("\n---");
  const scryptLines = text.slice(text.indexOf("\n") + 1, macAt + 1);
  const mixed = new TextDecoder("latin1").decode(ct.subarray(0, headerEnd)).replace(
    "\n-> X25519",
    "\n" + scryptLines + "-> X25519",
  );
  await rejectsCorrupt(concat(enc.encode(mixed), ct.subarray(headerEnd)), "age_header");
});

Deno.test("ageDecipher() caps the header size", async () => {
  const huge = concat(
    enc.encode("age-encryption.org/v1\n-> x\n"),
    new Uint8Array(2 << 20).fill(65),
  );
  for (const piece of [huge.length, 65536]) {
    await assert.rejects(
      decrypt(huge, [alice.identity], piece),
      (e: unknown) => e instanceof CorruptBundleError && /header is larger/.test(e.message),
    );
  }
});

Deno.test("ageDecipher() accepts unknown stanzas with any VCHAR arguments and empty bodies", async () => {
  const vchars = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join("");
  const stanzas: Stanza[] = [
    { type: vchars.slice(0, 8), args: [vchars.slice(8, 47)], body: new Uint8Array(0) },
    { type: "x", args: [vchars.slice(47)], body: new Uint8Array(48) }, // needs an empty last line
  ];
  const file = craft([{ plain: enc.encode("ok"), last: true }], stanzas);
  assert.equal(new TextDecoder().decode(await decrypt(file)), "ok");
});

for (const useLib of [false, true]) {
  Deno.test(`ageDecipher() [${useLib ? "libcrypto" : "node:crypto"}] opens, and names tampering, truncation and trailing data`, async () => {
    const saved = cryptoConfig.useLib;
    cryptoConfig.useLib = useLib;
    try {
      for (const piece of [1000, ENC_CHUNK_SIZE, ENC_CHUNK_SIZE + 1, 1 << 20]) {
        assert.deepEqual(await decrypt(ct, [alice.identity], piece), plain);
      }
      await rejectsCorrupt(flip(ct, payloadStart + ENC_CHUNK_SIZE + 100), "age_chunk");
      await rejectsCorrupt(ct.subarray(0, payloadStart + 2 * ENC_CHUNK_SIZE), "age_truncated");
      const full = await pipe(
        new Uint8Array(2 * CHUNK_SIZE),
        ageCipher([alice.recipient]).encrypt(),
      );
      await rejectsCorrupt(concat(full, new Uint8Array(20)), "age_trailing_data");
      assert.equal((await decrypt(craft([{ plain: new Uint8Array(0), last: true }]))).length, 0);
    } finally {
      cryptoConfig.useLib = saved;
    }
  });
}
