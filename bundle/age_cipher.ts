/**
 * {@linkcode ageCipher}: native, streaming age v1 encryption to X25519 recipients.
 *
 * @module
 */

import { createCipheriv, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { UsageError } from "../errors.ts";
import type { PayloadCipher } from "./crypto_types.ts";
import {
  CHUNK_SIZE,
  decodeRecipient,
  ENC_CHUNK_SIZE,
  encodeHeader,
  hkdf,
  incrementNonce,
  PAYLOAD_NONCE_SIZE,
  TAG_SIZE,
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
    encrypt: (): TransformStream<Uint8Array, Uint8Array> => encryptStream(keys),
  };
}

function encryptStream(recipients: Uint8Array[]): TransformStream<Uint8Array, Uint8Array> {
  const fileKey = randomBytes(16);
  const header = encodeHeader(recipients.map((r) => wrapX25519(fileKey, r)), fileKey);
  const payloadNonce = randomBytes(PAYLOAD_NONCE_SIZE);
  const key: KeyObject = createSecretKey(hkdf(fileKey, payloadNonce, "payload"));
  const nonce = new Uint8Array(12);
  const buf = new Uint8Array(CHUNK_SIZE);
  let fill = 0;

  // Seals one chunk into out[at..]; returns the new offset. Sealed chunks are batched into
  // one buffer per input piece: enqueuing each 16-byte tag on its own is cheaper here but
  // doubles the writes and hash updates of every consumer, which costs more overall.
  const seal = (plain: Uint8Array, last: boolean, out: Uint8Array, at: number): number => {
    if (last) nonce[11] = 1;
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
    const ct = c.update(plain);
    out.set(ct, at);
    at += ct.length;
    const fin = c.final();
    out.set(fin, at);
    at += fin.length;
    out.set(c.getAuthTag(), at);
    incrementNonce(nonce);
    return at + TAG_SIZE;
  };

  return new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      const first = new Uint8Array(header.length + PAYLOAD_NONCE_SIZE);
      first.set(header);
      first.set(payloadNonce, header.length);
      controller.enqueue(first);
    },
    transform(input, controller) {
      // A full chunk is sealed only once more bytes follow: the last chunk has its own flag.
      const avail = fill + input.length;
      const chunks = avail > CHUNK_SIZE ? Math.floor((avail - 1) / CHUNK_SIZE) : 0;
      const out = new Uint8Array(chunks * ENC_CHUNK_SIZE);
      let at = 0;
      let off = 0;
      while (off < input.length) {
        if (fill === CHUNK_SIZE) {
          at = seal(buf, false, out, at);
          fill = 0;
        }
        if (fill === 0 && input.length - off > CHUNK_SIZE) {
          at = seal(input.subarray(off, off + CHUNK_SIZE), false, out, at);
          off += CHUNK_SIZE;
          continue;
        }
        const n = Math.min(CHUNK_SIZE - fill, input.length - off);
        buf.set(input.subarray(off, off + n), fill);
        fill += n;
        off += n;
      }
      if (at > 0) controller.enqueue(out);
    },
    flush(controller) {
      const out = new Uint8Array(fill + TAG_SIZE);
      seal(buf.subarray(0, fill), true, out, 0);
      controller.enqueue(out);
    },
  });
}
