import assert from "node:assert/strict";
import { join } from "node:path";
import { RefusedError } from "../errors.ts";
import { tempDir } from "../tests/_tools.ts";
import { ageCipher } from "./age_cipher.ts";
import { ageDecipher } from "./age_decipher.ts";
import { parseIdentityFile, parseRecipientsFile } from "./age_keys.ts";
import { generateKeys } from "./keys.ts";
import { parseMinisignPublicKey, parseMinisignSecretKey } from "./minisign_keys.ts";

Deno.test("generateKeys() writes the four key files with private modes for secrets", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "keys");
  const keys = await generateKeys(out);
  assert.deepEqual(Object.values(keys.files).map((f) => f.slice(out.length + 1)).sort(), [
    "age.key",
    "age.pub",
    "memsnap.key",
    "memsnap.pub",
  ]);
  const mode = async (f: string) => (await Deno.stat(f)).mode! & 0o777;
  assert.equal(await mode(keys.files.signingSecretKey), 0o600);
  assert.equal(await mode(keys.files.ageIdentity), 0o600);
  assert.equal(await mode(keys.files.signingPublicKey), 0o644);
  assert.equal(await mode(keys.files.ageRecipient), 0o644);

  const ageKey = await Deno.readTextFile(keys.files.ageIdentity);
  assert.match(
    ageKey,
    /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n# public key: age1\w+\nAGE-SECRET-KEY-1\w+\n$/,
  );
  assert.ok(ageKey.includes(`# public key: ${keys.recipient}\n`));
  assert.deepEqual(parseRecipientsFile(await Deno.readTextFile(keys.files.ageRecipient)), [
    keys.recipient,
  ]);
  const pub = parseMinisignPublicKey(await Deno.readTextFile(keys.files.signingPublicKey));
  const sec = await parseMinisignSecretKey(await Deno.readTextFile(keys.files.signingSecretKey));
  assert.equal(pub.keyId, keys.keyId);
  assert.equal(sec.keyId, keys.keyId);

  const ct = await new Response(
    ReadableStream.from([new Uint8Array([1, 2, 3])]).pipeThrough(
      ageCipher([keys.recipient]).encrypt(),
    )
      .pipeThrough(ageDecipher(parseIdentityFile(ageKey)).decrypt()),
  ).bytes();
  assert.deepEqual(ct, new Uint8Array([1, 2, 3]));
});

Deno.test("generateKeys() encrypts the signing key with a passphrase", async () => {
  await using dir = await tempDir();
  const keys = await generateKeys(dir.path, {
    passphrase: "pw",
    kdfLimits: { opsLimit: 32768, memLimit: 1 << 24 },
  });
  const text = await Deno.readTextFile(keys.files.signingSecretKey);
  await assert.rejects(parseMinisignSecretKey(text), /no passphrase/);
  assert.equal((await parseMinisignSecretKey(text, { passphrase: "pw" })).keyId, keys.keyId);
});

Deno.test("generateKeys() refuses to overwrite any existing key file", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "age.pub"), "keep me\n");
  await assert.rejects(
    generateKeys(dir.path),
    (e: unknown) => e instanceof RefusedError && e.message.includes("age.pub"),
  );
  assert.equal(await Deno.readTextFile(join(dir.path, "age.pub")), "keep me\n");
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["age.pub"]);
});
