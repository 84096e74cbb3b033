/**
 * {@linkcode ageDecipher}: native, streaming age v1 decryption with X25519 identities.
 *
 * @module
 */

import { createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { RefusedError, UsageError } from "../errors.ts";
import type { PayloadDecipher } from "./crypto_types.ts";
import {
  AGE_VERSION_LINE,
  corrupt,
  decodeIdentity,
  ENC_CHUNK_SIZE,
  findMacLine,
  headerMac,
  hkdf,
  incrementNonce,
  macEqual,
  MAX_HEADER_SIZE,
  parseHeader,
  PAYLOAD_NONCE_SIZE,
  TAG_SIZE,
  unwrapX25519,
  x25519PrivateKey,
  x25519PublicBytes,
} from "./age_format.ts";

interface Identity {
  key: KeyObject;
  pub: Uint8Array;
}

const MAGIC = new TextEncoder().encode(AGE_VERSION_LINE + "\n");

/**
 * Creates a {@linkcode PayloadDecipher} that decrypts age v1 files with X25519 identities.
 *
 * Decryption is strict: a malformed header, non-canonical base64, a wrong header MAC, a
 * tampered or reordered chunk, a truncated stream or data after the final chunk make the
 * stream error; plaintext is only released chunk by chunk after its tag is checked.
 *
 * @param identities `AGE-SECRET-KEY-1...` strings (see {@linkcode parseIdentityFile}).
 * @returns The decipher.
 * @throws {UsageError} If the list is empty or an identity is malformed (named by position,
 *   never echoed).
 *
 * The stream returned by `decrypt()` errors with:
 * - {@linkcode RefusedError} when no identity matches any recipient stanza;
 * - {@linkcode CorruptBundleError} (a {@linkcode VerificationError}) when the ciphertext is
 *   malformed, tampered or truncated.
 *
 * @example Round trip
 * ```ts
 * import { ageCipher } from "./age_cipher.ts";
 * import { ageDecipher } from "./age_decipher.ts";
 * import { generateAgeIdentity } from "./age_keys.ts";
 *
 * const { identity, recipient } = generateAgeIdentity();
 * const plain = new TextEncoder().encode("memory");
 * const out = await new Response(
 *   ReadableStream.from([plain])
 *     .pipeThrough(ageCipher([recipient]).encrypt())
 *     .pipeThrough(ageDecipher([identity]).decrypt()),
 * ).text();
 * console.log(out); // memory
 * ```
 */
export function ageDecipher(identities: string[]): PayloadDecipher {
  if (identities.length === 0) {
    throw new UsageError("Cannot decrypt the payload: no age identity given");
  }
  const ids: Identity[] = identities.map((s, i) => {
    const scalar = decodeIdentity(s.trim());
    if (scalar === null) {
      throw new UsageError(
        `Cannot decrypt the payload: identity #${i + 1} is not an age X25519 identity`,
        { hint: "Expected AGE-SECRET-KEY-1... as written by age-keygen" },
      );
    }
    const key = x25519PrivateKey(scalar);
    return { key, pub: x25519PublicBytes(key) };
  });
  return { decrypt: (): TransformStream<Uint8Array, Uint8Array> => decryptStream(ids) };
}

function unlockHeader(header: Uint8Array, ids: Identity[]): Uint8Array {
  const parsed = parseHeader(header);
  if (parsed.stanzas.some((s) => s.type === "scrypt") && parsed.stanzas.length > 1) {
    throw corrupt("age_header", "an scrypt stanza must be the only stanza of an age header");
  }
  let fileKey: Uint8Array | null = null;
  for (const stanza of parsed.stanzas) {
    if (stanza.type !== "X25519") continue;
    for (const id of ids) {
      fileKey = unwrapX25519(stanza, id);
      if (fileKey !== null) break;
    }
    if (fileKey !== null) break;
  }
  if (fileKey === null) {
    throw new RefusedError("Cannot decrypt the payload: no identity matches its recipients", {
      hint: "Pass the age identity of one of the recipients the bundle was encrypted to",
    });
  }
  if (!macEqual(headerMac(fileKey, parsed.macInput), parsed.mac)) {
    throw corrupt("age_header_mac", "the age header MAC does not match (tampered header)");
  }
  return fileKey;
}

function decryptStream(ids: Identity[]): TransformStream<Uint8Array, Uint8Array> {
  let state: "header" | "nonce" | "payload" = "header";
  let head = new Uint8Array(4096);
  let headLen = 0;
  let macLineAt = -1;
  let fileKey: Uint8Array | null = null;
  let key: KeyObject | null = null;
  const nonce = new Uint8Array(12);
  let chunkIndex = 0;
  const buf = new Uint8Array(ENC_CHUNK_SIZE);
  let fill = 0;

  const tryOpen = (ct: Uint8Array, last: boolean): Uint8Array | null => {
    nonce[11] = last ? 1 : 0;
    const d = createDecipheriv("chacha20-poly1305", key!, nonce, { authTagLength: TAG_SIZE });
    d.setAuthTag(ct.subarray(ct.length - TAG_SIZE));
    const plain = d.update(ct.subarray(0, ct.length - TAG_SIZE));
    try {
      d.final();
    } catch {
      return null;
    }
    return plain;
  };

  const open = (ct: Uint8Array, last: boolean): Uint8Array => {
    const plain = tryOpen(ct, last);
    if (plain === null) {
      // Name the likely cause: a final chunk followed by more bytes, or a stream cut at a
      // chunk boundary; otherwise the chunk was tampered with.
      if (ct.length === ENC_CHUNK_SIZE && tryOpen(ct, !last) !== null) {
        throw last
          ? corrupt("age_truncated", `the age payload is truncated after chunk ${chunkIndex}`)
          : corrupt("age_trailing_data", "data follows the final chunk of the age payload");
      }
      throw corrupt("age_chunk", `payload chunk ${chunkIndex} failed authentication`);
    }
    if (last && plain.length === 0 && chunkIndex > 0) {
      throw corrupt("age_chunk", "the age payload ends with an empty chunk");
    }
    incrementNonce(nonce);
    chunkIndex++;
    return plain;
  };

  // Feeds payload bytes; returns plaintext chunks ready to release.
  const payload = (input: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => {
    let off = 0;
    while (off < input.length) {
      if (fill === ENC_CHUNK_SIZE) {
        controller.enqueue(open(buf, false));
        fill = 0;
      }
      if (fill === 0 && input.length - off > ENC_CHUNK_SIZE) {
        controller.enqueue(open(input.subarray(off, off + ENC_CHUNK_SIZE), false));
        off += ENC_CHUNK_SIZE;
        continue;
      }
      const n = Math.min(ENC_CHUNK_SIZE - fill, input.length - off);
      buf.set(input.subarray(off, off + n), fill);
      fill += n;
      off += n;
    }
  };

  return new TransformStream<Uint8Array, Uint8Array>({
    transform(input, controller) {
      if (state === "header") {
        if (headLen + input.length > head.length) {
          const grown = new Uint8Array(Math.max(head.length * 2, headLen + input.length));
          grown.set(head.subarray(0, headLen));
          head = grown;
        }
        head.set(input, headLen);
        const prevLen = headLen;
        headLen += input.length;
        const cmp = Math.min(headLen, MAGIC.length);
        for (let i = 0; i < cmp; i++) {
          if (head[i] !== MAGIC[i]) throw corrupt("age_header", "not an age v1 file");
        }
        if (macLineAt === -1) macLineAt = findMacLine(head, Math.max(0, prevLen - 3), headLen);
        const nl = macLineAt === -1 ? -1 : head.subarray(macLineAt + 1, headLen).indexOf(0x0a);
        if (nl === -1) {
          if (headLen > MAX_HEADER_SIZE) {
            throw corrupt("age_header", `the age header is larger than ${MAX_HEADER_SIZE} bytes`);
          }
          return;
        }
        const headerEnd = macLineAt + 1 + nl + 1;
        fileKey = unlockHeader(head.subarray(0, headerEnd), ids);
        state = "nonce";
        input = head.slice(headerEnd, headLen);
        head = new Uint8Array(0);
      }
      if (state === "nonce") {
        const need = PAYLOAD_NONCE_SIZE - fill;
        buf.set(input.subarray(0, need), fill);
        fill += Math.min(need, input.length);
        if (fill < PAYLOAD_NONCE_SIZE) return;
        key = createSecretKey(hkdf(fileKey!, buf.slice(0, PAYLOAD_NONCE_SIZE), "payload"));
        fileKey = null;
        fill = 0;
        state = "payload";
        input = input.subarray(need);
      }
      payload(input, controller);
    },
    flush(controller) {
      if (state === "header") {
        throw corrupt("age_truncated", "the age file ends inside its header");
      }
      if (state === "nonce") {
        throw corrupt("age_truncated", "the age file ends before its payload nonce");
      }
      if (fill < TAG_SIZE) {
        throw corrupt(
          "age_truncated",
          fill === 0 && chunkIndex === 0
            ? "the age payload is missing"
            : "the age payload is truncated",
        );
      }
      controller.enqueue(open(buf.subarray(0, fill), true));
    },
  });
}
