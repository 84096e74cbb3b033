import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { sign } from "node:crypto";
import { UsageError, VerificationError } from "../errors.ts";
import { generateSigningKeyPair, parseMinisignSecretKey } from "./minisign_keys.ts";
import { ed25519PrivateKey } from "./minisign_format.ts";
import { minisignSigner } from "./minisign_signer.ts";
import { minisignVerifier, parseMinisignSignature } from "./minisign_verifier.ts";
import type { Manifest } from "./types.ts";

const manifest = {
  created_at: "2026-11-25T19:52:22.123Z",
  snapshot_id: "s1",
  payload: { sha256: "00".repeat(32) },
} as Manifest;
const bytes = new TextEncoder().encode('{"snapshot_id":"s1"}');
const pair = await generateSigningKeyPair();
const other = await generateSigningKeyPair();
const sigBytes = await minisignSigner(pair.secretKey).sign(bytes, manifest);
const sigText = new TextDecoder().decode(sigBytes);
const enc = new TextEncoder();

async function rejectsCheck(p: Promise<void>, check: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof VerificationError, String(e));
    assert.equal(e.failures[0]?.check, check, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function replaceLine(i: number, f: (line: string) => string): Uint8Array {
  const lines = sigText.split("\n");
  lines[i] = f(lines[i]!);
  return enc.encode(lines.join("\n"));
}

function flipB64(line: string, at: number): string {
  const b = Buffer.from(line, "base64");
  b[at]! ^= 1;
  return b.toString("base64");
}

Deno.test("minisignVerifier() accepts our signatures, from a file or a bare key", async () => {
  await minisignVerifier(pair.publicKey).verify(bytes, sigBytes);
  await minisignVerifier(pair.publicKey.split("\n")[1]!).verify(bytes, sigBytes);
  await minisignVerifier(pair.publicKey).verify(
    bytes,
    enc.encode(sigText.replaceAll("\n", "\r\n")),
  );
});

Deno.test("minisignVerifier() rejects a tampered manifest", async () => {
  const tampered = bytes.slice();
  tampered[3]! ^= 1;
  await rejectsCheck(minisignVerifier(pair.publicKey).verify(tampered, sigBytes), "signature");
});

Deno.test("minisignVerifier() rejects a tampered signature", async () => {
  await rejectsCheck(
    minisignVerifier(pair.publicKey).verify(bytes, replaceLine(1, (l) => flipB64(l, 40))),
    "signature",
  );
  await rejectsCheck(
    minisignVerifier(pair.publicKey).verify(bytes, replaceLine(3, (l) => flipB64(l, 5))),
    "signature_comment",
  );
});

Deno.test("minisignVerifier() rejects a tampered trusted comment", async () => {
  const sig = replaceLine(2, (l) => l.replace("timestamp:", "timestamp:9"));
  await rejectsCheck(minisignVerifier(pair.publicKey).verify(bytes, sig), "signature_comment");
});

Deno.test("minisignVerifier() names both key ids when signed by another key", async () => {
  const sig = await minisignSigner(other.secretKey).sign(bytes, manifest);
  await rejectsCheck(
    minisignVerifier(pair.publicKey).verify(bytes, sig),
    "signature_key",
    new RegExp(
      `^Cannot verify the manifest signature: signed by a different key \\(key id ${other.keyId}, expected ${pair.keyId}\\)$`,
    ),
  );
});

Deno.test("minisignVerifier() rejects a valid signature made under the same key id by another key", async () => {
  // Same key number, different key: only the Ed25519 check can catch it.
  const forged = await parseMinisignSecretKey(other.secretKey);
  const real = await parseMinisignSecretKey(pair.secretKey);
  const sig = sign(null, Buffer.from(bytes), ed25519PrivateKey(forged.secretKey.subarray(0, 32)));
  const struct = Buffer.concat([Buffer.from("Ed"), real.keyNum, sig]);
  await rejectsCheck(
    minisignVerifier(pair.publicKey).verify(bytes, replaceLine(1, () => struct.toString("base64"))),
    "signature",
  );
});

Deno.test("minisignVerifier() accepts legacy (non-prehashed) Ed signatures", async () => {
  const key = await parseMinisignSecretKey(pair.secretKey);
  const priv = ed25519PrivateKey(key.secretKey.subarray(0, 32));
  const sig = sign(null, Buffer.from(bytes), priv);
  const tc = "timestamp:0\tfile:manifest.json";
  const global = sign(null, Buffer.concat([sig, Buffer.from(tc)]), priv);
  const file = `untrusted comment: legacy\n${
    Buffer.concat([Buffer.from("Ed"), key.keyNum, sig]).toString("base64")
  }\ntrusted comment: ${tc}\n${global.toString("base64")}\n`;
  await minisignVerifier(pair.publicKey).verify(bytes, enc.encode(file));
  assert.equal(parseMinisignSignature(enc.encode(file)).prehashed, false);
});

Deno.test("minisignVerifier() rejects malformed signature files", async () => {
  const v = minisignVerifier(pair.publicKey);
  for (
    const bad of [
      enc.encode(""),
      enc.encode("untrusted comment: x\n"),
      replaceLine(0, (l) => l.replace("untrusted", "trusted")),
      replaceLine(2, (l) => l.replace("trusted comment", "comment")),
      replaceLine(1, (l) => l.slice(0, -4)),
      replaceLine(1, (l) => flipB64(l, 1)), // algorithm "EE"
      enc.encode(sigText + "extra line\n"),
      new Uint8Array([0xff, 0xfe]),
    ]
  ) await rejectsCheck(v.verify(bytes, bad), "signature_format");
});

Deno.test("minisignVerifier() rejects a malformed public key with a UsageError", () => {
  assert.throws(() => minisignVerifier("untrusted comment: x\nAAAA\n"), UsageError);
});
