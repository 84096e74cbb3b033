/**
 * age X25519 keys: generating an identity, reading `age-keygen` identity files and recipient
 * files, and the recipient fingerprints recorded in manifests.
 *
 * @module
 */

import { createHash, generateKeyPairSync } from "node:crypto";
import { UsageError } from "../errors.ts";
import {
  decodeIdentity,
  decodeRecipient,
  encodeIdentity,
  encodeRecipient,
  x25519PrivateKey,
  x25519PublicBytes,
} from "./age_format.ts";

/** An age X25519 key pair as strings. */
export interface AgeKeyPair {
  /** The secret identity, `AGE-SECRET-KEY-1...`. */
  identity: string;
  /** The public recipient, `age1...`. */
  recipient: string;
}

/**
 * Generates a new age X25519 identity, like `age-keygen`.
 *
 * @returns The identity and its recipient.
 *
 * @example
 * ```ts
 * import { generateAgeIdentity } from "./age_keys.ts";
 * const { identity, recipient } = generateAgeIdentity();
 * console.log(identity.startsWith("AGE-SECRET-KEY-1"), recipient.startsWith("age1")); // true true
 * ```
 */
export function generateAgeIdentity(): AgeKeyPair {
  const { privateKey } = generateKeyPairSync("x25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const scalar = new Uint8Array(der.subarray(der.length - 32));
  return {
    identity: encodeIdentity(scalar),
    recipient: encodeRecipient(x25519PublicBytes(privateKey)),
  };
}

/**
 * Returns the recipient (`age1...`) of an identity, like `age-keygen -y`.
 *
 * @param identity An `AGE-SECRET-KEY-1...` string.
 * @returns The recipient.
 * @throws {UsageError} If `identity` is not an age X25519 identity.
 *
 * @example
 * ```ts
 * import { generateAgeIdentity, identityToRecipient } from "./age_keys.ts";
 * const pair = generateAgeIdentity();
 * console.log(identityToRecipient(pair.identity) === pair.recipient); // true
 * ```
 */
export function identityToRecipient(identity: string): string {
  const scalar = decodeIdentity(identity.trim());
  if (scalar === null) {
    throw new UsageError("Cannot read the age identity: not an AGE-SECRET-KEY-1... string");
  }
  return encodeRecipient(x25519PublicBytes(x25519PrivateKey(scalar)));
}

/**
 * The fingerprint of a recipient recorded in the manifest: the first 16 hex digits of the
 * SHA-256 of the `age1...` string (lowercase, trimmed).
 *
 * @param recipient An `age1...` string.
 * @returns 16 lowercase hex digits.
 * @throws {UsageError} If `recipient` is not an age X25519 recipient.
 *
 * @example
 * ```ts
 * import { recipientFingerprint } from "./age_keys.ts";
 * const fp = recipientFingerprint("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p");
 * console.log(fp.length); // 16
 * ```
 */
export function recipientFingerprint(recipient: string): string {
  const r = recipient.trim();
  if (decodeRecipient(r) === null) {
    throw new UsageError(
      `Cannot fingerprint "${recipient}": not an age X25519 recipient (age1...)`,
    );
  }
  return createHash("sha256").update(r).digest("hex").slice(0, 16);
}

function keyLines(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line !== "" && !line.startsWith("#")) out.push({ line, n: i + 1 });
  });
  return out;
}

/**
 * Reads an age identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-1...` per line;
 * blank lines and `#` comments are ignored.
 *
 * @param text The file contents.
 * @returns The identities, in file order.
 * @throws {UsageError} If a line is not an X25519 identity (the line number is named, never
 *   its contents), or the file holds none.
 *
 * @example
 * ```ts
 * import { generateAgeIdentity, parseIdentityFile } from "./age_keys.ts";
 * const { identity, recipient } = generateAgeIdentity();
 * const file = `# created: 2026-01-01T00:00:00Z\n# public key: ${recipient}\n${identity}\n`;
 * console.log(parseIdentityFile(file).length); // 1
 * ```
 */
export function parseIdentityFile(text: string): string[] {
  const out = keyLines(text).map(({ line, n }) => {
    if (decodeIdentity(line) === null) {
      throw new UsageError(
        `Cannot read the age identity file: line ${n} is not an age X25519 identity`,
        { hint: "Expected AGE-SECRET-KEY-1... lines as written by age-keygen" },
      );
    }
    return line;
  });
  if (out.length === 0) {
    throw new UsageError("Cannot read the age identity file: it holds no identity");
  }
  return out;
}

/**
 * Reads an age recipients file (as `age -R` does): one `age1...` per line; blank lines and
 * `#` comments are ignored.
 *
 * @param text The file contents.
 * @returns The recipients, in file order.
 * @throws {UsageError} If a line is not an X25519 recipient, or the file holds none.
 *
 * @example
 * ```ts
 * import { parseRecipientsFile } from "./age_keys.ts";
 * const list = parseRecipientsFile(
 *   "# ops team\nage1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
 * );
 * console.log(list.length); // 1
 * ```
 */
export function parseRecipientsFile(text: string): string[] {
  const out = keyLines(text).map(({ line, n }) => {
    if (decodeRecipient(line) === null) {
      throw new UsageError(
        `Cannot read the age recipients file: line ${n} ("${line}") is not an age X25519 recipient`,
      );
    }
    return line;
  });
  if (out.length === 0) {
    throw new UsageError("Cannot read the age recipients file: it holds no recipient");
  }
  return out;
}
