/**
 * Interop of the minisign-compatible signer, verifier and key files (bundle/minisign_*.ts)
 * with the real `minisign` CLI, in both directions.
 *
 * `minisign -G` with a passphrase always uses libsodium's "sensitive" scrypt cost (1 GiB,
 * several seconds), so the live test with a minisign-made passphrase key runs only when
 * `MEMSNAP_SLOW_TESTS=1`; a signature made by minisign 0.11 with such a key is checked in as
 * a fixture and always verified.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { VerificationError } from "../errors.ts";
import { generateKeys } from "../bundle/keys.ts";
import {
  generateSigningKeyPair,
  type KdfLimits,
  parseMinisignSecretKey,
} from "../bundle/minisign_keys.ts";
import { minisignSigner } from "../bundle/minisign_signer.ts";
import { minisignVerifier } from "../bundle/minisign_verifier.ts";
import type { Manifest } from "../bundle/types.ts";
import { interopTest, run, tempDir } from "./_tools.ts";

const FAST: KdfLimits = { opsLimit: 1 << 20, memLimit: 1 << 24 }; // scrypt N=2^14 r=8 p=2
const SLOW = Deno.env.get("MEMSNAP_SLOW_TESTS") === "1";
const enc = new TextEncoder();
const manifest = {
  created_at: "2026-11-25T19:52:22.123Z",
  snapshot_id: "20261125T195222123Z-1a2b3c4d",
  payload: { sha256: "5e".repeat(32) },
} as Manifest;
const manifestBytes = enc.encode('{"format":"memsnap-bundle","snapshot_id":"x"}');

/** A throwaway key made by `minisign -G` (minisign 0.11), passphrase "pw". */
const FIXTURE = {
  publicKey: "untrusted comment: minisign public key FF5ECAA7725FA0E4\n" +
    "RWTkoF9yp8pe/ztmkBRkooHqu/i1wVwsp3+jjJxgStTdKc+mHeEVOtXo\n",
  message: "memsnap interop fixture\n",
  signature: "untrusted comment: signature from minisign secret key\n" +
    "RUTkoF9yp8pe/+C+Bmled5szX8zXSIwNuSQD5koltc3SX0sLIgLtijoIUm1JICVrvaeicHnBJ+hYQNXy5+/mG71CPAnZs/qtgAM=\n" +
    "trusted comment: fixture signed by minisign 0.11 with a passphrase key\n" +
    "47wPbipCpC0mCXpnF/uQo49d048EA5LrmMlz4BAwcWugOkhkxnqHN+QSBLE5P55YbFHC3Q6lZ4Ivkzso6mSgAA==\n",
  secretKey: "untrusted comment: minisign encrypted secret key\n" +
    "RWRTY0Iy0co6585OubHxWSEu4vzj7Nc9+UbfLRAkL61oItsbjBoAAAACAAAAAAAAAEAAAAAAIEPRrOyp/xALPm00nJRqWVfN/Bu/KL/i0oDbz7aqHrDFtTqHyKKL/BqFfNMcySKdp5w1AMxPa7yPj74YFRCbGBH2ZPJmWtuWLIIVwPeHAkgHw5t61inJGYIW+271ad4OYpO0wb5cUwI=\n",
};

async function minisignVerify(dir: string, pub: string, message: Uint8Array, sig: Uint8Array) {
  const pubFile = join(dir, "v.pub");
  const msgFile = join(dir, "v.msg");
  const sigFile = join(dir, "v.minisig");
  await Deno.writeTextFile(pubFile, pub);
  await Deno.writeFile(msgFile, message);
  await Deno.writeFile(sigFile, sig);
  return await run("minisign", ["-V", "-p", pubFile, "-m", msgFile, "-x", sigFile]);
}

/** Signs `message` with `minisign -S`, piping the passphrase if any. */
async function minisignSign(
  dir: string,
  secretKey: string,
  message: Uint8Array,
  options: { passphrase?: string; legacy?: boolean } = {},
): Promise<Uint8Array> {
  const keyFile = join(dir, "s.key");
  const msgFile = join(dir, "s.msg");
  const sigFile = join(dir, "s.minisig");
  await Deno.writeTextFile(keyFile, secretKey, { mode: 0o600 });
  await Deno.writeFile(msgFile, message);
  const args = ["-S", ...(options.legacy ? ["-l"] : []), "-s", keyFile, "-m", msgFile];
  const r = await run("minisign", [...args, "-x", sigFile], {
    ...(options.passphrase === undefined ? {} : { stdin: enc.encode(options.passphrase + "\n") }),
  });
  assert.equal(r.code, 0, r.stderr + r.text);
  return await Deno.readFile(sigFile);
}

interopTest("minisign -V accepts minisignSigner() signatures", ["minisign"], async () => {
  await using dir = await tempDir();
  const plain = await generateSigningKeyPair();
  const locked = await generateSigningKeyPair({ passphrase: "s3cret", kdfLimits: FAST });
  for (
    const [pair, passphrase] of [[plain, undefined], [locked, "s3cret"]] as const
  ) {
    const signer = minisignSigner(pair.secretKey, passphrase ? { passphrase } : {});
    const sig = await signer.sign(manifestBytes, manifest);
    const ok = await minisignVerify(dir.path, pair.publicKey, manifestBytes, sig);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.text, /Signature and comment signature verified/);
    assert.match(ok.text, /Trusted comment: timestamp:1795636342\tsnapshot:20261125T195222123Z/);
    const bad = await minisignVerify(dir.path, pair.publicKey, enc.encode("other"), sig);
    assert.notEqual(bad.code, 0);
  }
});

interopTest(
  "minisign -V accepts signatures by keys from generateKeys()",
  ["minisign"],
  async () => {
    await using dir = await tempDir();
    const keys = await generateKeys(join(dir.path, "keys"));
    const secret = await Deno.readTextFile(keys.files.signingSecretKey);
    const sig = await minisignSigner(secret).sign(manifestBytes, manifest);
    const r = await run("minisign", [
      "-V",
      "-p",
      keys.files.signingPublicKey,
      "-m",
      await write(dir.path, "manifest.json", manifestBytes),
      "-x",
      await write(dir.path, "manifest.json.minisig", sig),
    ]);
    assert.equal(r.code, 0, r.stderr);
  },
);

async function write(dir: string, name: string, data: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await Deno.writeFile(p, data);
  return p;
}

interopTest("minisign -S signs with our secret keys, plain and passphrase-encrypted", [
  "minisign",
], async () => {
  await using dir = await tempDir();
  const plain = await generateSigningKeyPair();
  const locked = await generateSigningKeyPair({ passphrase: "pw 2", kdfLimits: FAST });
  for (const [pair, passphrase] of [[plain, undefined], [locked, "pw 2"]] as const) {
    const sig = await minisignSign(dir.path, pair.secretKey, manifestBytes, {
      ...(passphrase ? { passphrase } : {}),
    });
    await minisignVerifier(pair.publicKey).verify(manifestBytes, sig);
    const r = await minisignVerify(dir.path, pair.publicKey, manifestBytes, sig);
    assert.equal(r.code, 0, r.stderr);
  }
  // A wrong passphrase makes minisign fail just as it makes us fail.
  const keyFile = await write(dir.path, "w.key", enc.encode(locked.secretKey));
  const msg = await write(dir.path, "w.msg", manifestBytes);
  const wrong = await run("minisign", ["-S", "-s", keyFile, "-m", msg], {
    stdin: enc.encode("nope\n"),
  });
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr + wrong.text, /Wrong password/);
});

interopTest("minisignVerifier() accepts minisign -S signatures from minisign -G -W keys", [
  "minisign",
], async () => {
  await using dir = await tempDir();
  const pub = join(dir.path, "k.pub");
  const key = join(dir.path, "k.key");
  const g = await run("minisign", ["-G", "-W", "-p", pub, "-s", key]);
  assert.equal(g.code, 0, g.stderr);
  const pubText = await Deno.readTextFile(pub);
  const keyText = await Deno.readTextFile(key);
  const verifier = minisignVerifier(pubText);
  await verifier.verify(manifestBytes, await minisignSign(dir.path, keyText, manifestBytes));
  const legacy = await minisignSign(dir.path, keyText, manifestBytes, { legacy: true });
  assert.ok(new TextDecoder().decode(legacy).split("\n")[1]!.startsWith("RW")); // "Ed"
  await verifier.verify(manifestBytes, legacy);
  await assert.rejects(
    verifier.verify(enc.encode("tampered"), legacy),
    VerificationError,
  );
  // And our signer reads minisign's key; minisign verifies the result.
  const ours = await minisignSigner(keyText).sign(manifestBytes, manifest);
  const r = await minisignVerify(dir.path, pubText, manifestBytes, ours);
  assert.equal(r.code, 0, r.stderr);
  // Key ids are the same number.
  const { keyId } = await parseMinisignSecretKey(keyText);
  // (minisign 0.11 drops leading zeros from key ids; later versions pad them.)
  assert.match(
    pubText,
    new RegExp(`^untrusted comment: minisign public key 0*${keyId.replace(/^0+/, "")}\n`),
  );
});

interopTest("minisignVerifier() names the key ids minisign would", ["minisign"], async () => {
  await using dir = await tempDir();
  const a = await generateSigningKeyPair();
  const b = await generateSigningKeyPair();
  const sig = await minisignSigner(b.secretKey).sign(manifestBytes, manifest);
  const r = await minisignVerify(dir.path, a.publicKey, manifestBytes, sig);
  assert.notEqual(r.code, 0);
  // minisign 0.11 prints key ids without leading zeros; later versions pad them to 16 digits.
  const id = (k: string) => `0*${k.replace(/^0+/, "")}`;
  assert.match(
    r.stderr,
    new RegExp(`is ${id(b.keyId)}\\nbut the key id in the public key is ${id(a.keyId)}`),
  );
  await assert.rejects(
    minisignVerifier(a.publicKey).verify(manifestBytes, sig),
    new RegExp(`signed by a different key \\(key id ${b.keyId}, expected ${a.keyId}\\)`),
  );
});

Deno.test("minisignVerifier() accepts a signature made by minisign with a passphrase key", async () => {
  await minisignVerifier(FIXTURE.publicKey).verify(
    enc.encode(FIXTURE.message),
    enc.encode(FIXTURE.signature),
  );
  await assert.rejects(
    minisignVerifier(FIXTURE.publicKey).verify(enc.encode("x"), enc.encode(FIXTURE.signature)),
    VerificationError,
  );
});

Deno.test({
  name: "parseMinisignSecretKey() decrypts a passphrase key made by minisign -G (slow)",
  ignore: !SLOW,
  async fn() {
    const key = await parseMinisignSecretKey(FIXTURE.secretKey, { passphrase: "pw" });
    assert.equal(key.keyId, "FF5ECAA7725FA0E4");
  },
});

const slowName = "minisign -G passphrase keys: minisign signs, we verify (slow)";
if (SLOW) {
  interopTest(slowName, ["minisign"], async () => {
    await using dir = await tempDir();
    const pub = join(dir.path, "p.pub");
    const key = join(dir.path, "p.key");
    const g = await run("minisign", ["-G", "-p", pub, "-s", key], {
      stdin: enc.encode("pw\npw\n"),
    });
    assert.equal(g.code, 0, g.stderr);
    const sig = await minisignSign(dir.path, await Deno.readTextFile(key), manifestBytes, {
      passphrase: "pw",
    });
    await minisignVerifier(await Deno.readTextFile(pub)).verify(manifestBytes, sig);
  });
} else {
  Deno.test({ name: `interop: ${slowName}`, ignore: true, fn() {} });
}
