import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, verify } from "node:crypto";
import { UsageError } from "../errors.ts";
import { generateSigningKeyPair, parseMinisignPublicKey } from "./minisign_keys.ts";
import { ed25519PublicKey } from "./minisign_format.ts";
import { defaultTrustedComment, minisignSigner } from "./minisign_signer.ts";
import type { Manifest } from "./types.ts";

const manifest = {
  created_at: "2026-11-25T19:52:22.123Z",
  snapshot_id: "20261125T195222123Z-1a2b3c4d",
  payload: { sha256: "ab".repeat(32) },
} as Manifest;
const bytes = new TextEncoder().encode('{"format":"memsnap-bundle"}');
const pair = await generateSigningKeyPair();

Deno.test("defaultTrustedComment() names the timestamp, snapshot and payload hash", () => {
  assert.equal(
    defaultTrustedComment(manifest),
    `timestamp:1795636342\tsnapshot:20261125T195222123Z-1a2b3c4d\tpayload_sha256:${
      "ab".repeat(32)
    }`,
  );
});

Deno.test("minisignSigner() writes a prehashed minisign signature file", async () => {
  const text = new TextDecoder().decode(await minisignSigner(pair.secretKey).sign(bytes, manifest));
  const lines = text.split("\n");
  assert.equal(lines.length, 5);
  assert.equal(lines[4], "");
  assert.equal(lines[0], "untrusted comment: signature from minisign secret key");
  assert.equal(lines[2], `trusted comment: ${defaultTrustedComment(manifest)}`);
  const sig = Buffer.from(lines[1]!, "base64");
  assert.equal(sig.length, 74);
  assert.equal(sig.subarray(0, 2).toString(), "ED");
  const pub = parseMinisignPublicKey(pair.publicKey);
  assert.deepEqual(new Uint8Array(sig.subarray(2, 10)), pub.keyNum);
  const key = ed25519PublicKey(pub.publicKey);
  const prehash = createHash("blake2b512").update(bytes).digest();
  assert.ok(verify(null, prehash, key, sig.subarray(10)));
  const global = Buffer.from(lines[3]!, "base64");
  const tc = Buffer.from(defaultTrustedComment(manifest));
  assert.ok(verify(null, Buffer.concat([sig.subarray(10), tc]), key, global));
});

Deno.test("minisignSigner() is deterministic for the same manifest and key", async () => {
  const a = await minisignSigner(pair.secretKey).sign(bytes, manifest);
  const b = await minisignSigner(pair.secretKey).sign(bytes, manifest);
  assert.deepEqual(a, b);
});

Deno.test("minisignSigner() takes custom comments and rejects multi-line ones", async () => {
  const signer = minisignSigner(pair.secretKey, {
    trustedComment: (m) => `snapshot ${m.snapshot_id}`,
    untrustedComment: "memsnap",
  });
  const text = new TextDecoder().decode(await signer.sign(bytes, manifest));
  assert.match(text, /^untrusted comment: memsnap\n.*\ntrusted comment: snapshot 2026/);
  await assert.rejects(
    minisignSigner(pair.secretKey, { trustedComment: () => "a\nb" }).sign(bytes, manifest),
    UsageError,
  );
  assert.throws(() => minisignSigner(pair.secretKey, { untrustedComment: "a\rb" }), UsageError);
});

Deno.test("minisignSigner() checks the key file at once and the passphrase on first sign", async () => {
  assert.throws(() => minisignSigner("not a key"), UsageError);
  const enc = await generateSigningKeyPair({
    passphrase: "pw",
    kdfLimits: { opsLimit: 32768, memLimit: 1 << 24 },
  });
  await assert.rejects(
    minisignSigner(enc.secretKey, { passphrase: "nope" }).sign(bytes, manifest),
    /wrong passphrase/,
  );
  await assert.rejects(minisignSigner(enc.secretKey).sign(bytes, manifest), /no passphrase/);
  const ok = await minisignSigner(enc.secretKey, { passphrase: "pw" }).sign(bytes, manifest);
  assert.ok(ok.length > 200);
});
