/**
 * Interop of the native age implementation (bundle/age_*.ts) with the real `age` CLI and with
 * the reference TypeScript implementation (npm `age-encryption`), in every direction.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as npmAge from "age-encryption";
import { RefusedError } from "../errors.ts";
import { ageCipher } from "../bundle/age_cipher.ts";
import { ageDecipher } from "../bundle/age_decipher.ts";
import {
  generateAgeIdentity,
  identityToRecipient,
  parseIdentityFile,
  parseRecipientsFile,
} from "../bundle/age_keys.ts";
import { generateKeys } from "../bundle/keys.ts";
import { interopTest, run, tempDir } from "./_tools.ts";

const SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536 + 17];

function payload(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 10)) & 0xff;
  return b;
}

async function encrypt(plain: Uint8Array, recipients: string[]): Promise<Uint8Array> {
  return await new Response(
    ReadableStream.from([plain]).pipeThrough(ageCipher(recipients).encrypt()),
  ).bytes();
}

async function decrypt(ct: Uint8Array, identities: string[]): Promise<Uint8Array> {
  return await new Response(
    ReadableStream.from([ct]).pipeThrough(ageDecipher(identities).decrypt()),
  ).bytes();
}

async function ageKeygen(dir: string, name: string): Promise<{ file: string; text: string }> {
  const file = join(dir, name);
  const r = await run("age-keygen", ["-o", file]);
  assert.equal(r.code, 0, r.stderr);
  return { file, text: await Deno.readTextFile(file) };
}

interopTest("age -d decrypts ageCipher() output at chunk-boundary sizes", ["age"], async () => {
  await using dir = await tempDir();
  const me = generateAgeIdentity();
  const idFile = join(dir.path, "id.txt");
  await Deno.writeTextFile(idFile, `# test\n${me.identity}\n`);
  for (const n of SIZES) {
    const plain = payload(n);
    const ctFile = join(dir.path, `ct-${n}.age`);
    await Deno.writeFile(ctFile, await encrypt(plain, [me.recipient]));
    const r = await run("age", ["-d", "-i", idFile, ctFile]);
    assert.equal(r.code, 0, `size ${n}: ${r.stderr}`);
    assert.deepEqual(r.stdout, plain, `size ${n}`);
  }
});

interopTest("age -d decrypts ageCipher() output for one of several recipients", [
  "age",
  "age-keygen",
], async () => {
  await using dir = await tempDir();
  const theirs = await ageKeygen(dir.path, "theirs.txt");
  const theirRecipient = parseIdentityFile(theirs.text).map(identityToRecipient)[0]!;
  const plain = payload(200_000);
  const ctFile = join(dir.path, "ct.age");
  await Deno.writeFile(
    ctFile,
    await encrypt(plain, [generateAgeIdentity().recipient, theirRecipient]),
  );
  const r = await run("age", ["-d", "-i", theirs.file, ctFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout, plain);
});

interopTest("ageDecipher() decrypts age -r and age -R output with our identity among many", [
  "age",
  "age-keygen",
], async () => {
  await using dir = await tempDir();
  const k1 = await ageKeygen(dir.path, "k1.txt");
  const k2 = await ageKeygen(dir.path, "k2.txt");
  const r1 = (await run("age-keygen", ["-y", k1.file])).text.trim();
  const r2 = (await run("age-keygen", ["-y", k2.file])).text.trim();
  const me = generateAgeIdentity();
  const recipientsFile = join(dir.path, "recipients.txt");
  await Deno.writeTextFile(recipientsFile, `# team\n${r1}\n\n${me.recipient}\n${r2}\n`);
  assert.deepEqual(parseRecipientsFile(await Deno.readTextFile(recipientsFile)), [
    r1,
    me.recipient,
    r2,
  ]);
  for (const n of SIZES) {
    const plainFile = join(dir.path, `plain-${n}`);
    const plain = payload(n, 13);
    await Deno.writeFile(plainFile, plain);
    const viaR = await run("age", ["-r", r1, "-r", me.recipient, "-r", r2, plainFile]);
    assert.equal(viaR.code, 0, viaR.stderr);
    const viaFile = await run("age", ["-R", recipientsFile, plainFile]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.deepEqual(await decrypt(viaR.stdout, [me.identity]), plain, `-r size ${n}`);
    assert.deepEqual(await decrypt(viaFile.stdout, [me.identity]), plain, `-R size ${n}`);
    assert.deepEqual(await decrypt(viaR.stdout, parseIdentityFile(k2.text)), plain);
  }
  const ct = (await run("age", ["-r", r1, join(dir.path, "plain-1")])).stdout;
  await assert.rejects(decrypt(ct, [me.identity]), RefusedError);
});

interopTest("age-keygen and identityToRecipient() agree on recipients", [
  "age-keygen",
], async () => {
  await using dir = await tempDir();
  const theirs = await ageKeygen(dir.path, "k.txt");
  const comment = theirs.text.match(/^# public key: (age1\w+)$/m)?.[1];
  assert.equal(identityToRecipient(parseIdentityFile(theirs.text)[0]!), comment);
  const me = generateAgeIdentity();
  const mine = join(dir.path, "mine.txt");
  await Deno.writeTextFile(mine, me.identity + "\n");
  assert.equal((await run("age-keygen", ["-y", mine])).text.trim(), me.recipient);
});

interopTest("age -d reads the age.key that generateKeys() writes", ["age"], async () => {
  await using dir = await tempDir();
  const keys = await generateKeys(dir.path);
  const ctFile = join(dir.path, "ct.age");
  const plain = payload(1000);
  await Deno.writeFile(ctFile, await encrypt(plain, [keys.recipient]));
  const r = await run("age", ["-d", "-i", keys.files.ageIdentity, ctFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout, plain);
  const viaPub = await run("age", ["-R", keys.files.ageRecipient, "-o", join(dir.path, "x.age")], {
    stdin: plain,
  });
  assert.equal(viaPub.code, 0, viaPub.stderr);
  const identities = parseIdentityFile(await Deno.readTextFile(keys.files.ageIdentity));
  assert.deepEqual(await decrypt(await Deno.readFile(join(dir.path, "x.age")), identities), plain);
});

Deno.test("age-encryption (npm) decrypts ageCipher() output", async () => {
  const id = await npmAge.generateIdentity();
  const recipient = await npmAge.identityToRecipient(id);
  const other = generateAgeIdentity();
  for (const n of SIZES) {
    const plain = payload(n);
    const d = new npmAge.Decrypter();
    d.addIdentity(id);
    const out = await d.decrypt(await encrypt(plain, [other.recipient, recipient]));
    assert.deepEqual(out, plain, `size ${n}`);
  }
});

Deno.test("ageDecipher() decrypts age-encryption (npm) output", async () => {
  const me = generateAgeIdentity();
  const other = await npmAge.identityToRecipient(await npmAge.generateIdentity());
  for (const n of SIZES) {
    const plain = payload(n, 3);
    const e = new npmAge.Encrypter();
    e.addRecipient(other);
    e.addRecipient(me.recipient);
    assert.deepEqual(await decrypt(await e.encrypt(plain), [me.identity]), plain, `size ${n}`);
  }
});

Deno.test("ageDecipher() refuses a passphrase-encrypted (scrypt) age file", async () => {
  const e = new npmAge.Encrypter();
  e.setPassphrase("hunter2");
  e.setScryptWorkFactor(10);
  const ct = await e.encrypt(payload(10));
  await assert.rejects(
    decrypt(ct, [generateAgeIdentity().identity]),
    (err: unknown) => err instanceof RefusedError && /no identity matches/.test(err.message),
  );
});
