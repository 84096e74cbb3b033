import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { UsageError } from "../errors.ts";
import { blake2b } from "./_blake2b.ts";
import {
  generateSigningKeyPair,
  MINISIGN_MEMLIMIT_SENSITIVE,
  MINISIGN_OPSLIMIT_SENSITIVE,
  parseMinisignPublicKey,
  parseMinisignSecretKey,
} from "./minisign_keys.ts";
import { scryptParams } from "./minisign_format.ts";

const FAST = { opsLimit: 1 << 20, memLimit: 1 << 24 }; // N=2^14, r=8, p=2

function keyBytes(file: string): Uint8Array {
  return new Uint8Array(Buffer.from(file.split("\n")[1]!, "base64"));
}

function keyFile(bytes: Uint8Array): string {
  return `untrusted comment: x\n${Buffer.from(bytes).toString("base64")}\n`;
}

Deno.test("scryptParams() derives N, r, p like libsodium's pickparams", () => {
  assert.deepEqual(scryptParams(MINISIGN_OPSLIMIT_SENSITIVE, MINISIGN_MEMLIMIT_SENSITIVE), {
    logN: 20,
    r: 8,
    p: 1,
  });
  assert.deepEqual(scryptParams(524288, 16777216), { logN: 14, r: 8, p: 1 }); // INTERACTIVE
  assert.deepEqual(scryptParams(FAST.opsLimit, FAST.memLimit), { logN: 14, r: 8, p: 2 });
  assert.deepEqual(scryptParams(32768, 1 << 24), { logN: 10, r: 8, p: 1 });
  assert.deepEqual(scryptParams(1, 1 << 24), { logN: 10, r: 8, p: 1 }); // ops clamped to 32768
});

Deno.test("generateSigningKeyPair() writes unencrypted keys like minisign -G -W", async () => {
  const pair = await generateSigningKeyPair();
  assert.match(pair.keyId, /^[0-9A-F]{16}$/);
  const [comment, line, end] = pair.publicKey.split("\n");
  assert.equal(comment, `untrusted comment: minisign public key ${pair.keyId}`);
  assert.equal(end, "");
  assert.equal(line!.length, 56);
  const sk = keyBytes(pair.secretKey);
  assert.equal(sk.length, 158);
  assert.equal(pair.secretKey.split("\n")[0], "untrusted comment: minisign encrypted secret key");
  assert.deepEqual([...sk.subarray(0, 6)], [0x45, 0x64, 0, 0, 0x42, 0x32]); // Ed, no KDF, B2
  assert.ok(sk.subarray(6, 54).every((b) => b === 0)); // no salt, no limits
  const pub = parseMinisignPublicKey(pair.publicKey);
  const sec = await parseMinisignSecretKey(pair.secretKey);
  assert.equal(sec.encrypted, false);
  assert.equal(sec.keyId, pair.keyId);
  assert.deepEqual(sec.publicKey, pub.publicKey);
  assert.deepEqual(sec.keyNum, pub.keyNum);
  assert.deepEqual(
    sk.subarray(126),
    blake2b(32, new Uint8Array([0x45, 0x64]), pub.keyNum, sec.secretKey),
  );
});

Deno.test("generateSigningKeyPair() encrypts with a passphrase; the wrong one is refused", async () => {
  const pair = await generateSigningKeyPair({ passphrase: "correct horse", kdfLimits: FAST });
  const sk = keyBytes(pair.secretKey);
  assert.deepEqual([...sk.subarray(0, 6)], [0x45, 0x64, 0x53, 0x63, 0x42, 0x32]); // Ed Sc B2
  const dv = new DataView(sk.buffer);
  assert.equal(dv.getBigUint64(38, true), BigInt(FAST.opsLimit));
  assert.equal(dv.getBigUint64(46, true), BigInt(FAST.memLimit));
  const sec = await parseMinisignSecretKey(pair.secretKey, { passphrase: "correct horse" });
  assert.equal(sec.encrypted, true);
  assert.equal(sec.keyId, pair.keyId);
  await assert.rejects(
    parseMinisignSecretKey(pair.secretKey, { passphrase: "wrong" }),
    (e: unknown) =>
      e instanceof UsageError && /wrong passphrase \(checksum mismatch\)/.test(e.message),
  );
  await assert.rejects(
    parseMinisignSecretKey(pair.secretKey),
    (e: unknown) => e instanceof UsageError && /no passphrase/.test(e.message),
  );
});

Deno.test("parseMinisignSecretKey() accepts a zeroed checksum only on unencrypted keys", async () => {
  const pair = await generateSigningKeyPair();
  const sk = keyBytes(pair.secretKey);
  sk.fill(0, 126);
  assert.equal((await parseMinisignSecretKey(keyFile(sk))).keyId, pair.keyId);
  sk[130] = 1;
  await assert.rejects(parseMinisignSecretKey(keyFile(sk)), /checksum mismatch/);
});

Deno.test("parseMinisignSecretKey() rejects malformed files", async () => {
  const pair = await generateSigningKeyPair();
  const sk = keyBytes(pair.secretKey);
  await assert.rejects(parseMinisignSecretKey("nonsense"), UsageError);
  await assert.rejects(parseMinisignSecretKey(keyFile(sk.subarray(0, 157))), UsageError);
  for (
    const [at, what] of [[0, /signature algorithm/], [2, /key derivation/], [
      4,
      /checksum/,
    ]] as const
  ) {
    const bad = sk.slice();
    bad[at] = 0x58;
    await assert.rejects(parseMinisignSecretKey(keyFile(bad)), what);
  }
  const mismatched = sk.slice();
  mismatched[100]! ^= 1; // public half no longer matches the seed
  mismatched.set(
    blake2b(
      32,
      mismatched.subarray(0, 2),
      mismatched.subarray(54, 62),
      mismatched.subarray(62, 126),
    ),
    126,
  );
  await assert.rejects(parseMinisignSecretKey(keyFile(mismatched)), /public half/);
});

Deno.test("parseMinisignPublicKey() reads files and bare base64 keys", async () => {
  const pair = await generateSigningKeyPair();
  const line = pair.publicKey.split("\n")[1]!;
  assert.equal(parseMinisignPublicKey(line).keyId, pair.keyId);
  assert.equal(parseMinisignPublicKey(pair.publicKey.replaceAll("\n", "\r\n")).keyId, pair.keyId);
  assert.throws(() => parseMinisignPublicKey("RWQ"), UsageError);
  assert.throws(() => parseMinisignPublicKey(pair.secretKey), UsageError);
  const bytes = Buffer.from(line, "base64");
  bytes[1] = 0x44; // "ED" is a signature algorithm, not a key algorithm
  assert.throws(() => parseMinisignPublicKey(bytes.toString("base64")), /unsupported/);
});
