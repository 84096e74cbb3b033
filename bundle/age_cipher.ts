/**
 * {@linkcode ageCipher}: native, streaming age v1 encryption to X25519 recipients.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { UsageError } from "../errors.ts";
import type { PayloadCipher, PayloadSealer } from "./crypto_types.ts";
import {
  AgeSealer,
  decodeRecipient,
  encodeHeader,
  PAYLOAD_NONCE_SIZE,
  payloadEncryptor,
  wrapX25519,
} from "./age_format.ts";
import { recipientFingerprint } from "./age_keys.ts";

/**
 * Creates a {@linkcode PayloadCipher} that encrypts to age X25519 recipients.
 *
 * The output is a standard age v1 file (binary, not armored): `age -d -i key.txt` and every
 * other age implementation decrypt it. Each call of `encrypt()` draws a fresh file key, so
 * two encryptions of the same plaintext differ.
 *
 * @param recipients `age1...` recipient strings (as printed by `age-keygen -y`), at least one.
 * @returns The cipher, with the recipients' fingerprints for the manifest.
 * @throws {UsageError} If the list is empty or a recipient is not a valid `age1...` key.
 *
 * @example Encrypt a payload
 * ```ts
 * import { ageCipher } from "./age_cipher.ts";
 * import { generateAgeIdentity } from "./age_keys.ts";
 *
 * const { recipient } = generateAgeIdentity();
 * const cipher = ageCipher([recipient]);
 * const ciphertext = await new Response(
 *   ReadableStream.from([new TextEncoder().encode("memory")]).pipeThrough(cipher.encrypt()),
 * ).bytes();
 * console.log(cipher.recipients[0]?.length); // 16
 * console.log(new TextDecoder().decode(ciphertext.subarray(0, 21))); // age-encryption.org/v1
 * ```
 */
export function ageCipher(recipients: string[]): PayloadCipher {
  if (recipients.length === 0) {
    throw new UsageError("Cannot encrypt the payload: no age recipient given");
  }
  const keys = recipients.map((r) => {
    const key = decodeRecipient(r.trim());
    if (key === null) {
      throw new UsageError(
        `Cannot encrypt the payload: "${r}" is not an age X25519 recipient (age1...)`,
      );
    }
    return key;
  });
  return {
    scheme: "age",
    recipients: recipients.map((r) => recipientFingerprint(r.trim())),
    encrypt: (): TransformStream<Uint8Array, Uint8Array> => {
      const { header, fileKey, nonce } = fresh(keys);
      return payloadEncryptor(header, fileKey, nonce);
    },
    sealer: (): PayloadSealer => {
      const { header, fileKey, nonce } = fresh(keys);
      return new AgeSealer(header, fileKey, nonce, true);
    },
  };
}

/** A fresh file key, its header for `recipients`, and a fresh payload nonce. */
function fresh(
  recipients: Uint8Array[],
): { header: Uint8Array; fileKey: Uint8Array; nonce: Uint8Array } {
  const fileKey = randomBytes(16);
  const header = encodeHeader(recipients.map((r) => wrapX25519(fileKey, r)), fileKey);
  return { header, fileKey, nonce: randomBytes(PAYLOAD_NONCE_SIZE) };
}
