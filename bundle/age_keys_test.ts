import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { UsageError } from "../errors.ts";
import {
  generateAgeIdentity,
  identityToRecipient,
  parseIdentityFile,
  parseRecipientsFile,
  recipientFingerprint,
} from "./age_keys.ts";

// The example recipient from age's README.
const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

Deno.test("generateAgeIdentity() returns a matching identity and recipient", () => {
  const a = generateAgeIdentity();
  const b = generateAgeIdentity();
  assert.match(a.identity, /^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$/);
  assert.match(a.recipient, /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/);
  assert.equal(identityToRecipient(a.identity), a.recipient);
  assert.notEqual(a.identity, b.identity);
});

Deno.test("identityToRecipient() rejects non-identities", () => {
  assert.throws(() => identityToRecipient(RECIPIENT), UsageError);
  assert.throws(() => identityToRecipient("AGE-SECRET-KEY-1"), UsageError);
});

Deno.test("recipientFingerprint() is the first 16 hex of SHA-256 of the recipient", () => {
  const expected = createHash("sha256").update(RECIPIENT).digest("hex").slice(0, 16);
  assert.equal(recipientFingerprint(RECIPIENT), expected);
  assert.equal(recipientFingerprint(` ${RECIPIENT}\n`), expected);
  assert.throws(() => recipientFingerprint("age1xyz"), UsageError);
});

Deno.test("parseIdentityFile() reads age-keygen files with comments and blank lines", () => {
  const a = generateAgeIdentity();
  const b = generateAgeIdentity();
  const text =
    `# created: 2026-11-25T20:00:00Z\r\n# public key: ${a.recipient}\r\n${a.identity}\r\n` +
    `\n   \n# second\n  ${b.identity}  \n`;
  assert.deepEqual(parseIdentityFile(text), [a.identity, b.identity]);
});

Deno.test("parseIdentityFile() names the bad line but never its contents", () => {
  const a = generateAgeIdentity();
  const secretish = a.identity.slice(0, -1) + (a.identity.endsWith("Q") ? "P" : "Q");
  assert.throws(
    () => parseIdentityFile(`# c\n${a.identity}\n${secretish}\n`),
    (e: unknown) =>
      e instanceof UsageError && e.message.includes("line 3") && !e.message.includes(secretish),
  );
  assert.throws(() => parseIdentityFile("# only comments\n\n"), UsageError);
  assert.throws(() => parseIdentityFile(a.identity.toLowerCase()), UsageError);
});

Deno.test("parseRecipientsFile() reads recipients, skipping comments and blank lines", () => {
  const a = generateAgeIdentity();
  assert.deepEqual(parseRecipientsFile(`# team\n${RECIPIENT}\n\n${a.recipient}\n`), [
    RECIPIENT,
    a.recipient,
  ]);
  assert.throws(
    () => parseRecipientsFile(`${RECIPIENT}\nage1bogus\n`),
    (e: unknown) => e instanceof UsageError && e.message.includes("line 2"),
  );
  assert.throws(() => parseRecipientsFile(""), UsageError);
});
